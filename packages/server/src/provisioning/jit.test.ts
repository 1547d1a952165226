import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { PROFILES } from '@certfleet/pki';
import { makeChild, makeRoot, type TestCa } from '../../../pki/src/testing/hierarchy.js';
import { CertfleetError } from '../errors.js';
import type { CertfleetEvents } from '../events/index.js';
import { buildApi } from '../http/api.js';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { parseProvisioningTemplate, renderJitTemplate } from './jit.js';

/* The JIT template format, and the hook's decisions against a real store (SQLite and PostgreSQL). The device flows over MQTT: jit-broker.test.ts. */

const root = makeRoot('ec-p256', 'CN=JIT Test Root');
const issuing = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=JIT Test Issuing' });
const device = (name: string): TestCa => makeChild(issuing, PROFILES.device, { name });

describe('JIT template', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['not JSON', '{"thingName": ', /not JSON/],
    ['a bad template name', 'has space', /template name/],
    ['no thingName', '{"policies": []}', /thingName/],
    ['an unknown field', '{"thingName": "x", "override": "replace"}', /unknown field "override"/],
    ['an unknown placeholder', '{"thingName": "${thing.name}"}', /unknown placeholder/],
    ['an unterminated placeholder', '{"thingName": "a-${cert.subject.cn"}', /unterminated|unknown placeholder/],
    ['characters no thing name has', '{"thingName": "dev ${cert.subject.cn}"}', /outside placeholders/],
    ['a bad group name', '{"thingName": "x", "groups": ["a/b"]}', /groups\[0\]/],
    ['a policy listed twice', '{"thingName": "x", "policies": ["p", "p"]}', /twice/],
    ['a placeholder in an attribute that does not exist', '{"thingName": "x", "attributes": {"a": "${cert.serial}"}}', /attributes\.a/],
    ['attributes that are not strings', '{"thingName": "x", "attributes": {"a": 1}}', /attributes/],
    ['a list too long', `{"thingName": "x", "groups": ${JSON.stringify(Array.from({ length: 17 }, (_, i) => `g${i}`))}}`, /at most 16/],
    ['too long', `{"thingName": "x", "attributes": {"a": "${'x'.repeat(8200)}"}}`, /at most 8192/],
  ];
  for (const [name, text, message] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseProvisioningTemplate(text), (err: unknown) => err instanceof CertfleetError && err.code === 'bad-request' && message.test(err.message));
    });
  }

  it('accepts a JSON template and a template name', () => {
    const inline = parseProvisioningTemplate('{"thingName": "sensor-${cert.subject.serialNumber}", "attributes": {"cn": "${cert.subject.cn}"}, "groups": ["g"], "policies": ["p"]}');
    assert.deepEqual(inline, { kind: 'inline', template: { thingName: 'sensor-${cert.subject.serialNumber}', attributes: { cn: '${cert.subject.cn}' }, groups: ['g'], policies: ['p'] } });
    assert.deepEqual(parseProvisioningTemplate('factory_line-2'), { kind: 'named', name: 'factory_line-2' });
  });

  const rendered: Array<[string, string, string, { thingName: string; attributes: Record<string, string> } | RegExp]> = [
    ['the CN', '${cert.subject.cn}', 'CN=dev-7', { thingName: 'dev-7', attributes: {} }],
    // RFC 4514 writes the most specific RDN first; it is the last one encoded.
    ['the most specific CN', '${cert.subject.cn}', 'CN=inner,CN=outer', { thingName: 'inner', attributes: {} }],
    ['the subject serialNumber with literal text', 'sn:${cert.subject.serialNumber}', 'CN=x,serialNumber=SN-0042', { thingName: 'sn:SN-0042', attributes: {} }],
    ['nothing for a thing name the certificate cannot fill', '${cert.subject.serialNumber}', 'CN=x', /no serialNumber/],
    ['nothing for a CN that is no thing name', '${cert.subject.cn}', 'CN=dev.example.com', /not a thing name/],
  ];
  it('leaves out an attribute the certificate cannot fill', () => {
    const t = parseProvisioningTemplate(JSON.stringify({ thingName: '${cert.subject.cn}', attributes: { sn: '${cert.subject.serialNumber}', cn: 'is ${cert.subject.cn}' } }));
    assert.deepEqual(renderJitTemplate(t.kind === 'inline' ? t.template : assert.fail(), device('CN=dev-8').cert), { thingName: 'dev-8', attributes: { cn: 'is dev-8' } });
  });

  for (const [name, thingName, subject, want] of rendered) {
    it(`renders ${name}`, () => {
      const t = parseProvisioningTemplate(JSON.stringify({ thingName, attributes: { site: 'paris' } }));
      assert.equal(t.kind, 'inline');
      const run = () => renderJitTemplate(t.kind === 'inline' ? t.template : assert.fail(), device(subject).cert);
      if (want instanceof RegExp) assert.throws(run, (err: unknown) => err instanceof CertfleetError && want.test(err.message));
      else assert.deepEqual(run(), { thingName: want.thingName, attributes: { site: 'paris', ...want.attributes } });
    });
  }
});

function hookSuite(open: () => Promise<TestNode>, cleanup: () => Promise<void>): void {
  let node: TestNode;
  const caId = `ca-jit-${randomBytes(4).toString('hex')}`;
  const registered: Array<CertfleetEvents['certificate.registered']> = [];
  before(async () => {
    node = await open();
    const s = node.s;
    for (const [id, ca, parentId] of [[`${caId}-root`, root, null], [caId, issuing, `${caId}-root`]] as const) {
      const c = ca.cert;
      await s.store.insertCa({
        id, name: id, parentId, kind: 'external', status: 'active', keyAlgorithm: c.keyAlgorithm(), subject: c.subject(), serial: c.serial(),
        certificateDer: c.der, notBefore: c.notBefore(), notAfter: c.notAfter(), pathLen: c.basicConstraints()?.pathLen ?? null, createdAt: new Date(),
      });
    }
    await s.policies.create({ id: 'test' }, 'jit-policy', { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] });
    await s.things.createGroup({ id: 'test' }, { name: 'jit-group' });
    s.bus.on('certificate.registered', (e) => void registered.push(e));
  });
  after(async () => {
    await node?.close();
    await cleanup();
  });

  const template = (t: object) => node.s.authorities.updateProvisioning({ id: 'test' }, caId, { autoRegistration: true, provisioningTemplate: JSON.stringify(t) });

  it('does nothing for a CA without auto-registration', async () => {
    await node.s.authorities.updateProvisioning({ id: 'test' }, caId, { autoRegistration: false, provisioningTemplate: null });
    assert.equal(await node.s.jit.register({ leaf: device('CN=nobody').cert, issuerIds: [caId] }), undefined);
  });

  it('eight concurrent first connections of one certificate register it once', async () => {
    await template({ thingName: '${cert.subject.cn}', groups: ['jit-group'], policies: ['jit-policy'] });
    const leaf = device('CN=race-dev').cert;
    const before = registered.length;
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => node.s.jit.register({ leaf, issuerIds: [caId] })));
    for (const o of outcomes) assert.ok(o && 'registered' in o && o.registered.id === leaf.fingerprint() && o.registered.status === 'active', JSON.stringify(o));
    assert.equal(registered.length - before, 1, 'one certificate.registered event');
    const audit = await node.s.store.listAuditLog({ limit: 10, target: `certificate:${leaf.fingerprint()}` });
    assert.deepEqual(audit.items.map((e) => [e.actor, e.action]), [['system', 'certificate.jitp']]);
    const thing = await node.s.things.getThing('race-dev');
    assert.deepEqual(thing.groups.map((g) => g.name), ['jit-group']);
  });

  it('refuses (does not throw) when the template names a missing policy, and writes nothing', async () => {
    await template({ thingName: '${cert.subject.cn}', policies: ['no-such-policy'] });
    const leaf = device('CN=orphan-dev').cert;
    const o = await node.s.jit.register({ leaf, issuerIds: [caId] });
    assert.ok(o && 'refused' in o && /no-such-policy/.test(o.refused), JSON.stringify(o));
    assert.equal(await node.s.store.getThing('orphan-dev'), undefined);
    assert.equal(await node.s.store.getCertificate(leaf.fingerprint()), undefined);
  });

  it('refuses under a named template nothing resolves yet', async () => {
    await node.s.authorities.updateProvisioning({ id: 'test' }, caId, { autoRegistration: true, provisioningTemplate: 'factory-template' });
    const o = await node.s.jit.register({ leaf: device('CN=named-dev').cert, issuerIds: [caId] });
    assert.ok(o && 'refused' in o && /factory-template/.test(o.refused));
  });

  it('JITR without a template: pending-activation, no thing, one event', async () => {
    await node.s.authorities.updateProvisioning({ id: 'test' }, caId, { autoRegistration: true, provisioningTemplate: null });
    const leaf = device('CN=jitr-dev').cert;
    const o = await node.s.jit.register({ leaf, issuerIds: [caId] });
    assert.ok(o && 'registered' in o);
    assert.deepEqual([o.registered.status, o.registered.thingName, o.registered.profile, o.registered.issuerId], ['pending-activation', null, 'jitr', caId]);
    assert.deepEqual(registered.at(-1), { certificateId: leaf.fingerprint(), caId, status: 'pending-activation' });
  });
}

describe('JIT hook on SQLite', () => {
  hookSuite(() => testNode(), async () => {});
});

const pg = await postgresUnreachable();
describe('JIT hook on PostgreSQL', { skip: pg.skip ?? false }, () => {
  const schema = `certfleet_test_${randomBytes(6).toString('hex')}`;
  hookSuite(() => testNode({ database: PG_URL, schema }), () => dropTestSchema(schema));
});

describe('PATCH /api/v1/cas/{id} provisioningTemplate', () => {
  let node: TestNode;
  let app: FastifyInstance;
  let token: string;
  before(async () => {
    node = await testNode();
    app = await buildApi(node.s);
    token = await node.token('admin');
  });
  after(async () => {
    await app.close();
    await node.close();
  });
  const patch = (body: object) =>
    app.inject({ method: 'PATCH', url: `/api/v1/cas/${node.issuingId}`, headers: { authorization: `Bearer ${token}` }, payload: body });

  it('stores a JIT template longer than a name, a template name, or null', async () => {
    const t = JSON.stringify({ thingName: '${cert.subject.cn}', attributes: { site: 'a-site-with-a-long-name-'.repeat(5) }, groups: ['sensors'], policies: ['telemetry'] });
    assert.ok(t.length > 128);
    for (const provisioningTemplate of [t, 'factory-template', null]) {
      const r = await patch({ autoRegistration: true, provisioningTemplate });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().provisioningTemplate, provisioningTemplate);
    }
  });

  it('refuses a template that does not parse, and changes nothing', async () => {
    const before = await node.s.authorities.provisioning(node.issuingId);
    for (const provisioningTemplate of ['{"thingName": "${nope}"}', '{oops', 'two words', 'x'.repeat(8193)]) {
      const r = await patch({ autoRegistration: !before.autoRegistration, provisioningTemplate });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(r.json().code, 'bad-request');
    }
    assert.deepEqual(await node.s.authorities.provisioning(node.issuingId), before);
  });
});
