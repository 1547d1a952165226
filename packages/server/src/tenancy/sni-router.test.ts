import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { connect, createSecureContext, createServer, type SecureContext } from 'node:tls';
import { PROFILES } from '@certfleet/pki';
import { makeChild, makeRoot } from '../../../pki/src/testing/hierarchy.js';
import { keyPem } from '../broker/test-fixtures.js';
import { sniCallback, SniRouter } from './sni-router.js';

describe('SniRouter', () => {
  const router = new SniRouter('default');
  router.set('acme', ['a.example', 'Mqtt.Acme.Example'], 'acme');
  router.set('beta', ['b.example'], 'beta');

  const cases: Array<[string | false | undefined, string | undefined, string]> = [
    ['a.example', 'acme', 'acme'],
    ['A.EXAMPLE', 'acme', 'acme'],
    ['a.example.', 'acme', 'acme'],
    ['mqtt.acme.example', 'acme', 'acme'],
    ['b.example', 'beta', 'beta'],
    ['x.a.example', undefined, 'default'],
    ['localhost', undefined, 'default'],
    ['', undefined, 'default'],
    [false, undefined, 'default'],
    [undefined, undefined, 'default'],
  ];
  for (const [sni, tenant, value] of cases) {
    it(`routes SNI ${JSON.stringify(sni)} to ${tenant ?? 'the default tenant'}`, () => {
      assert.deepEqual(router.route(sni), { tenant, value });
    });
  }

  it('refuses a host another tenant holds, and frees a removed tenant\'s hosts', () => {
    const r = new SniRouter(0);
    r.set('a', ['x.example'], 1);
    assert.throws(() => r.set('b', ['x.example'], 2), /already routes to tenant a/);
    assert.equal(r.route('x.example').value, 1);
    r.set('a', ['y.example'], 3);
    assert.equal(r.route('x.example').tenant, undefined, 'replacing a tenant drops its old hosts');
    assert.equal(r.remove('a'), true);
    assert.equal(r.remove('a'), false);
    r.set('b', ['x.example', 'y.example'], 2);
    assert.deepEqual(r.route('y.example'), { tenant: 'b', value: 2 });
    assert.deepEqual(r.tenants(), ['b']);
  });
});

describe('sniCallback', () => {
  it('serves each tenant its own certificate on one listener, and the default one without SNI or for an unknown name', async () => {
    const contexts = new Map<string, { cert: string; key: string }>();
    for (const name of ['default', 'acme']) {
      const root = makeRoot('ec-p256', `CN=${name} Root`);
      const leaf = makeChild(root, PROFILES.server, { name: `CN=${name} server`, sans: [{ type: 'dns', value: name === 'acme' ? 'a.example' : 'localhost' }] });
      contexts.set(name, { cert: leaf.cert.toPem(), key: keyPem(leaf.key) });
    }
    const router = new SniRouter<SecureContext | undefined>(undefined);
    router.set('acme', ['a.example'], createSecureContext(contexts.get('acme')!));
    const server = createServer({ ...contexts.get('default')!, SNICallback: sniCallback((name) => router.route(name).value) }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const subjectFor = (servername?: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
          resolve(s.getPeerCertificate().subject.CN as string);
          s.destroy();
        });
        s.on('error', reject);
      });
    try {
      assert.equal(await subjectFor('a.example'), 'acme server');
      assert.equal(await subjectFor('A.Example'), 'acme server');
      assert.equal(await subjectFor('other.example'), 'default server');
      assert.equal(await subjectFor(), 'default server');
    } finally {
      server.close();
    }
  });
});
