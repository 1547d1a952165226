import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertfleetError } from '../errors.js';
import type { ThingRecord } from '../store/index.js';
import { decideThing, parseTemplate, renderTemplate, resolveParameters, type OverrideRule } from './templates.js';

const base = {
  parameters: { SerialNumber: { type: 'string' }, Site: { type: 'string', default: 'paris' } },
  thing: { name: 'meter-${parameters.SerialNumber}', attributes: { site: '${parameters.Site}', cn: '${cert.subject.cn}' }, groups: ['site-${parameters.Site}'], override: 'merge' },
  policies: ['telemetry'],
  deviceConfiguration: { topic: 'dt/${parameters.SerialNumber}', interval: 60, nested: ['${cert.id}'] },
};

const refused = (doc: unknown, message: RegExp) => () =>
  assert.throws(() => parseTemplate(doc), (err: unknown) => err instanceof CertfleetError && err.code === 'bad-request' && message.test(err.message));

describe('provisioning template validation', () => {
  it('accepts a full template and fills defaults', () => {
    const t = parseTemplate(base);
    assert.equal(t.thing.override, 'merge');
    assert.deepEqual(t.parameters.Site, { type: 'string', default: 'paris' });
    const minimal = parseTemplate({ thing: { name: '${cert.subject.cn}' } });
    assert.deepEqual([minimal.thing.override, minimal.policies, minimal.thing.groups, minimal.deviceConfiguration], ['do-nothing', [], [], {}]);
    const hooked = parseTemplate({ thing: { name: 'x' }, preProvisioningHook: { url: 'https://hooks.example/allow' } });
    assert.deepEqual(hooked.preProvisioningHook, { url: 'https://hooks.example/allow', timeoutMs: 5000 });
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['a document that is not an object', [], /^template: must be an object/],
    ['an unknown top-level field', { ...base, extra: 1 }, /^template: unknown field "extra"/],
    ['a template without a thing', { policies: [] }, /^thing: must be an object/],
    ['an unknown thing field', { thing: { name: 'x', owner: 'me' } }, /^thing: unknown field "owner"/],
    ['an undeclared parameter', { thing: { name: '${parameters.Nope}' } }, /^thing\.name: .*does not declare/],
    ['an unknown placeholder', { thing: { name: '${thing.attr.x}' } }, /^thing\.name: unknown placeholder/],
    ['an unterminated placeholder', { thing: { name: 'a${parameters.X' }, parameters: { X: { type: 'string' } } }, /unterminated|does not declare/],
    ['a thing name that can never be valid', { thing: { name: 'bad name/${cert.id}' } }, /^thing\.name: thing name must be/],
    ['a non-string attribute', { thing: { name: 'x', attributes: { n: 1 } } }, /^thing\.attributes\.n: must be a string/],
    ['a bad override rule', { thing: { name: 'x', override: 'overwrite' } }, /^thing\.override: must be one of do-nothing, replace, fail, merge/],
    ['a parameter of another type', { thing: { name: 'x' }, parameters: { N: { type: 'number' } } }, /^parameters\.N\.type/],
    ['a bad parameter name', { thing: { name: 'x' }, parameters: { 'a-b': { type: 'string' } } }, /^parameters\.a-b: a parameter name/],
    ['a policy name with a placeholder', { thing: { name: 'x' }, policies: ['p-${cert.id}'] }, /^policies(\[0\])?:/],
    ['a group name that can never be valid', { thing: { name: 'x', groups: ['a b'] } }, /^thing\.groups\[0\]: group name/],
    ['a hook that is not http(s)', { thing: { name: 'x' }, preProvisioningHook: { url: 'file:///etc/passwd' } }, /^preProvisioningHook\.url: must be http/],
    ['a hook timeout out of range', { thing: { name: 'x' }, preProvisioningHook: { url: 'https://h', timeoutMs: 60_000 } }, /^preProvisioningHook\.timeoutMs/],
    ['a placeholder in device configuration that is not declared', { thing: { name: 'x' }, deviceConfiguration: { a: ['${parameters.Q}'] } }, /^deviceConfiguration\.a\[0\]/],
    ['an oversized document', { thing: { name: 'x' }, description: 'd', deviceConfiguration: { blob: 'x'.repeat(30_000) } }, /larger than/],
  ];
  for (const [name, doc, message] of cases) it(`refuses ${name}`, refused(doc, message));
});

describe('rendering a template for a device', () => {
  const t = parseTemplate(base);
  const cert = { id: 'f00d', subjectCn: 'dev-cn' };

  it('fills parameters, defaults and certificate variables everywhere', () => {
    const plan = renderTemplate(t, { parameters: resolveParameters(t, { SerialNumber: 'A1', Ignored: 'x' }), certificate: cert });
    assert.deepEqual(plan, {
      thingName: 'meter-A1',
      attributes: { site: 'paris', cn: 'dev-cn' },
      groups: ['site-paris'],
      override: 'merge',
      policies: ['telemetry'],
      deviceConfiguration: { topic: 'dt/A1', interval: 60, nested: ['f00d'] },
    });
  });

  it('refuses a missing parameter, a value that makes a bad name, a value of the wrong type', () => {
    assert.throws(() => renderTemplate(t, { parameters: resolveParameters(t, {}), certificate: cert }), /parameter SerialNumber is required/);
    assert.throws(() => renderTemplate(t, { parameters: resolveParameters(t, { SerialNumber: 'a/b' }), certificate: cert }), /^CertfleetError: thing\.name|thing\.name: thing name must be/);
    assert.throws(() => resolveParameters(t, { SerialNumber: 7 }), /parameters\.SerialNumber: must be a string/);
    assert.throws(() => resolveParameters(t, ['x']), /parameters: must be an object/);
    const cn = parseTemplate({ thing: { name: '${cert.subject.cn}' } });
    assert.throws(() => renderTemplate(cn, { parameters: {}, certificate: { id: 'x', subjectCn: null } }), /no subject CN/);
  });
});

describe('override rules', () => {
  const existing: ThingRecord = { name: 'm', attributes: { a: '1', b: '2' }, createdAt: new Date(0), updatedAt: new Date(0) };
  const attrs = { b: '3', c: '4' };
  const table: Array<[OverrideRule, ThingRecord | undefined, unknown]> = [
    ['do-nothing', undefined, { kind: 'create', attributes: attrs }],
    ['fail', undefined, { kind: 'create', attributes: attrs }],
    ['do-nothing', existing, { kind: 'keep' }],
    ['replace', existing, { kind: 'update', attributes: attrs }],
    ['merge', existing, { kind: 'update', attributes: { a: '1', b: '3', c: '4' } }],
    ['fail', existing, 'conflict'],
  ];
  for (const [rule, thing, expected] of table) {
    it(`${rule} on ${thing ? 'an existing' : 'a new'} thing`, () => {
      if (expected === 'conflict') {
        assert.throws(() => decideThing(rule, thing, attrs), (err: unknown) => err instanceof CertfleetError && err.code === 'conflict');
      } else assert.deepEqual(decideThing(rule, thing, attrs), expected);
    });
  }
  it('merge changes nothing when the template adds nothing new', () => {
    assert.deepEqual(decideThing('merge', existing, { a: '1' }), { kind: 'keep' });
  });
});
