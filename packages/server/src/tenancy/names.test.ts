import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSniHost, checkSniHosts, checkTenantName, tenantSchema } from './names.js';

describe('tenant names and SNI hosts', () => {
  for (const ok of ['a', 'acme', 'acme-2', 'x'.repeat(31)]) it(`accepts tenant name ${ok}`, () => assert.equal(checkTenantName(ok), ok));
  for (const bad of ['', 'Acme', '2acme', '-a', 'a_b', 'a.b', '../x', 'x'.repeat(32), 7]) {
    it(`refuses tenant name ${JSON.stringify(bad)}`, () => assert.throws(() => checkTenantName(bad), { code: 'bad-request' }));
  }
  for (const [given, want] of [['a.localhost', 'a.localhost'], ['MQTT.Example.COM.', 'mqtt.example.com'], ['x', 'x'], ['a-1.b-2.example', 'a-1.b-2.example']]) {
    it(`accepts SNI host ${given}`, () => assert.equal(checkSniHost(given), want));
  }
  for (const bad of ['', '127.0.0.1', '::1', '*.example.com', '-a.example', 'a..b', 'a_b.example', `${'x'.repeat(64)}.example`, 'a b', 5]) {
    it(`refuses SNI host ${JSON.stringify(bad)}`, () => assert.throws(() => checkSniHost(bad), { code: 'bad-request' }));
  }
  it('takes one to twenty hosts, without repeats', () => {
    assert.deepEqual(checkSniHosts(['a.example', 'A.example', 'b.example']), ['a.example', 'b.example']);
    assert.throws(() => checkSniHosts([]), { code: 'bad-request' });
    assert.throws(() => checkSniHosts('a.example'), { code: 'bad-request' });
    assert.throws(() => checkSniHosts(Array.from({ length: 21 }, (_, i) => `h${i}.example`)), { code: 'bad-request' });
  });
  it('maps a tenant to a PostgreSQL schema name', () => assert.equal(tenantSchema('acme-2'), 'tenant_acme_2'));
});
