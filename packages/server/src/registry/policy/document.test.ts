import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertfleetError } from '../../errors.js';
import { parsePolicyDocument, policyDocumentSize, POLICY_DOCUMENT_MAX_BYTES } from './document.js';

const stmt = (over: Record<string, unknown> = {}) => ({ effect: 'allow', actions: ['publish'], resources: ['things/t1/x'], ...over });
const doc = (over: Record<string, unknown> = {}) => ({ statements: [stmt(over)] });
const long = (n: number) => 'x'.repeat(n);

describe('parsePolicyDocument refuses, each with its own message', () => {
  const rows: [string, unknown, RegExp][] = [
    ['JSON text that does not parse', '{"statements": [', /^policy document is not JSON/],
    ['JSON text over 20 KiB', JSON.stringify(doc()) + ' '.repeat(POLICY_DOCUMENT_MAX_BYTES), /larger than 20480 bytes/],
    ['a document over 20 KiB of compact JSON', { statements: [stmt({ resources: Array.from({ length: 50 }, (_, i) => `t/${i}/${long(500)}`) })] }, /larger than 20480 bytes/],
    ['null', null, /^policy document: must be a JSON object, not null/],
    ['an array', [doc()], /^policy document: must be a JSON object, not an array/],
    ['an array as JSON text', '[]', /^policy document: must be a JSON object, not an array/],
    ['a class instance', new Date(), /^policy document: must be a JSON object, not a Date/],
    ['an unknown top-level field', { ...doc(), Version: '2012-10-17' }, /^policy document: unknown field "Version"/],
    ['__proto__ as a JSON field', '{"__proto__": {}, "statements": []}', /^policy document: unknown field "__proto__"/],
    ['no statements', {}, /^policy document: missing field "statements"/],
    ['an unknown version', { ...doc(), version: '2012-10-17' }, /^version: must be "2026-01-01"/],
    ['statements not an array', { statements: stmt() }, /^statements: must be an array, not an object/],
    ['no statement', { statements: [] }, /^statements: must hold at least one statement/],
    ['101 statements', { statements: Array.from({ length: 101 }, () => stmt()) }, /^statements: 101 statements, at most 100/],
    ['a statement that is not an object', { statements: ['allow all'] }, /^statements\[0\]: must be a JSON object, not a string/],
    ['an unknown statement field', doc({ condition: {} }), /^statements\[0\]: unknown field "condition"/],
    ['a statement without effect', { statements: [{ actions: ['publish'], resources: ['a'] }] }, /^statements\[0\]: missing field "effect"/],
    ['a statement without actions', { statements: [{ effect: 'allow', resources: ['a'] }] }, /^statements\[0\]: missing field "actions"/],
    ['a statement without resources', { statements: [{ effect: 'allow', actions: ['publish'] }] }, /^statements\[0\]: missing field "resources"/],
    ['an unknown effect', doc({ effect: 'Allow' }), /^statements\[0\]\.effect: must be "allow" or "deny"/],
    ['actions not an array', doc({ actions: 'publish' }), /^statements\[0\]\.actions: must be an array, not a string/],
    ['no action', doc({ actions: [] }), /^statements\[0\]\.actions: must hold at least one action/],
    ['an unknown action', doc({ actions: ['publish', 'read'] }), /^statements\[0\]\.actions\[1\]: unknown action "read"/],
    ['a wildcard action', doc({ actions: ['*'] }), /^statements\[0\]\.actions\[0\]: unknown action "\*"/],
    ['an AWS-style action', doc({ actions: ['iot:Publish'] }), /^statements\[0\]\.actions\[0\]: unknown action "iot:Publish"/],
    ['an action that is not a string', doc({ actions: [1] }), /^statements\[0\]\.actions\[0\]: must be a string, not a number/],
    ['a duplicate action', doc({ actions: ['publish', 'receive', 'publish'] }), /^statements\[0\]\.actions\[2\]: "publish" is listed twice/],
    ['resources not an array', doc({ resources: 'a' }), /^statements\[0\]\.resources: must be an array, not a string/],
    ['no resource', doc({ resources: [] }), /^statements\[0\]\.resources: must hold at least one resource/],
    ['101 resources', doc({ resources: Array.from({ length: 101 }, (_, i) => `t/${i}`) }), /^statements\[0\]\.resources: 101 resources, at most 100/],
    ['a resource that is not a string', doc({ resources: ['a', 7] }), /^statements\[0\]\.resources\[1\]: must be a string, not a number/],
    ['an empty resource', doc({ resources: [''] }), /^statements\[0\]\.resources\[0\]: must not be empty/],
    ['a resource over 512 characters', doc({ resources: [long(513)] }), /^statements\[0\]\.resources\[0\]: 513 characters, at most 512/],
    ['a NUL in a resource', doc({ resources: ['a\u0000b'] }), /^statements\[0\]\.resources\[0\]: control character U\+0000 at index 1/],
    ['a C0 control in a resource', doc({ resources: ['ab\nc'] }), /^statements\[0\]\.resources\[0\]: control character U\+000A at index 2/],
    ['DEL in a resource', doc({ resources: ['a\u007fb'] }), /^statements\[0\]\.resources\[0\]: control character U\+007F/],
    ['a C1 control in a resource', doc({ resources: ['a\u0085b'] }), /^statements\[0\]\.resources\[0\]: control character U\+0085/],
    ['a lone surrogate', doc({ resources: ['a\ud800b'] }), /^statements\[0\]\.resources\[0\]: not well-formed Unicode/],
    ['# not the last level', doc({ resources: ['a/#/b'] }), /^statements\[0\]\.resources\[0\]: "a\/#\/b" is not an MQTT topic filter.*MQTT-4\.7\.1-2/],
    ['# sharing its level', doc({ resources: ['a/b#'] }), /is not an MQTT topic filter/],
    ['+ sharing its level', doc({ actions: ['subscribe'], resources: ['things/t+/x'] }), /is not an MQTT topic filter/],
    ['a variable beside +', doc({ actions: ['receive'], resources: ['things/${thing.name}+'] }), /is not an MQTT topic filter/],
    ['an unknown variable', doc({ resources: ['things/${thing.type}/x'] }), /^statements\[0\]\.resources\[0\]: unknown variable \$\{thing\.type\}/],
    ['an AWS-style variable', doc({ resources: ['things/${iot:ClientId}'] }), /unknown variable \$\{iot:ClientId\}/],
    ['a variable in the wrong case', doc({ resources: ['${Client.Id}'] }), /unknown variable \$\{Client\.Id\}/],
    ['an empty variable', doc({ resources: ['a/${}'] }), /unknown variable \$\{\}/],
    ['an attribute variable without a key', doc({ resources: ['a/${thing.attr.}'] }), /attribute name in \$\{thing\.attr\.\} must be 1-128/],
    ['an attribute key with a disallowed character', doc({ resources: ['a/${thing.attr.a@b}'] }), /attribute name in \$\{thing\.attr\.a@b\}/],
    ['an attribute key over 128 characters', doc({ resources: [`a/\${thing.attr.${long(129)}}`] }), /attribute name in/],
    ['an unterminated variable', doc({ resources: ['things/${thing.name/x'] }), /^statements\[0\]\.resources\[0\]: unterminated variable/],
    ['a nested variable', doc({ resources: ['${thing.attr.${client.id}}'] }), /attribute name in \$\{thing\.attr\.\$\{client\.id\}/],
    ['the error in a later statement', { statements: [stmt(), stmt({ effect: 'permit' })] }, /^statements\[1\]\.effect/],
  ];
  for (const [name, input, message] of rows) {
    it(name, () => {
      assert.throws(
        () => parsePolicyDocument(input),
        (err: unknown) => err instanceof CertfleetError && err.code === 'bad-request' && message.test(err.message),
      );
    });
  }
  it('every refusal above has its own message', () => {
    const messages = rows.map(([, input]) => {
      try {
        parsePolicyDocument(input);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    });
    // Only the two size cases, and an array given as a value or as text, share a message.
    assert.equal(new Set(messages).size, rows.length - 2, messages.join('\n'));
  });
});

describe('parsePolicyDocument accepts', () => {
  const rows: [string, unknown][] = [
    ['a minimal document', doc()],
    ['the version', { version: '2026-01-01', ...doc() }],
    ['every action once', doc({ actions: ['connect', 'publish', 'subscribe', 'receive'] })],
    ['every variable', doc({ resources: ['t/${thing.name}/${thing.attr.site}/${cert.id}/${cert.subject.cn}/${client.id}'] })],
    ['an attribute key of every allowed character', doc({ resources: ['t/${thing.attr.Az09_.-}'] })],
    ['a variable among literal text in a level', doc({ resources: ['t/pre-${thing.name}-post'] })],
    ['a $ topic spelled out', doc({ resources: ['$certfleet/things/${thing.name}/#'] })],
    ['a lone $ and braces', doc({ resources: ['a$b/{x}/$'] })],
    ['empty levels and a trailing /', doc({ resources: ['a//b/'] })],
    ['wildcards in a connect-only statement (literal client ids)', doc({ actions: ['connect'], resources: ['a/#/b', 'x+y', '*'] })],
    ['non-ASCII', doc({ resources: ['capteurs/été/🌡'] })],
    ['duplicate resources', doc({ resources: ['a', 'a'] })],
    ['JSON text', JSON.stringify({ statements: [stmt({ effect: 'deny' })] })],
    ['pretty-printed JSON text', JSON.stringify(doc(), null, 2)],
    ['100 statements', { statements: Array.from({ length: 100 }, (_, i) => stmt({ resources: [`${i}`] })) }],
    ['100 resources', doc({ resources: Array.from({ length: 100 }, (_, i) => `${i}`) })],
    ['a resource of 512 characters', doc({ resources: [long(512)] })],
  ];
  for (const [name, input] of rows) {
    it(name, () => {
      const parsed = parsePolicyDocument(input);
      assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.statements[0]) && Object.isFrozen(parsed.statements[0]!.resources));
      const plain = typeof input === 'string' ? JSON.parse(input) : input;
      assert.deepEqual(JSON.parse(JSON.stringify(parsed)), plain, 'the same document comes back');
    });
  }

  it('a copy, so the caller changing its object changes nothing', () => {
    const input = doc();
    const parsed = parsePolicyDocument(input);
    input.statements[0]!.resources.push('#');
    assert.deepEqual(parsed.statements[0]!.resources, ['things/t1/x']);
  });

  it('policyDocumentSize is the UTF-8 length of the compact JSON', () => {
    const parsed = parsePolicyDocument(JSON.stringify(doc({ resources: ['é'] }), null, 2));
    assert.equal(policyDocumentSize(parsed), Buffer.byteLength('{"statements":[{"effect":"allow","actions":["publish"],"resources":["é"]}]}'));
  });
});
