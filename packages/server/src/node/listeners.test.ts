import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createSecureContext, type TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { PROFILES } from '@certfleet/pki';
import { makeChild, makeRoot } from '../../../pki/src/testing/hierarchy.js';
import { keyPem } from '../broker/test-fixtures.js';
import { SniRouter, sniCallback } from '../tenancy/sni-router.js';
import { startApiListener, startPublicListener, type Listening } from './listeners.js';

/** A tenant's API as a stack has it: a Fastify app that listens on nothing and is handed connections. */
async function tenantApp(name: string): Promise<FastifyInstance> {
  const app = Fastify();
  app.get('/who', async (req) => {
    const peer = (req.raw.socket as TLSSocket).getPeerCertificate();
    return { tenant: name, protocol: req.protocol, client: peer.subject?.CN ?? null };
  });
  app.get('/crl/:file', async (req) => ({ tenant: name, url: req.url }));
  await app.ready();
  return app;
}

const stackOf = (app: FastifyInstance) => ({ acceptApi: (s: Socket) => app.server.emit('connection', s), public: app });

describe('the node listeners', () => {
  const root = makeRoot('ec-p256', 'CN=Listener Root');
  const leaf = (cn: string, dns: string) => makeChild(root, PROFILES.server, { name: `CN=${cn}`, sans: [{ type: 'dns', value: dns }] });
  const node = leaf('node', 'localhost');
  const acme = leaf('acme', 'a.example');
  const client = makeChild(root, PROFILES.device, { name: 'CN=device-1' });
  let apps: Record<string, FastifyInstance>;
  let api: Listening;
  let pub: Listening;

  before(async () => {
    apps = { default: await tenantApp('default'), acme: await tenantApp('acme') };
    const router = new SniRouter<{ context: ReturnType<typeof createSecureContext> | null; app: FastifyInstance }>({ context: null, app: apps.default! });
    router.set('acme', ['a.example'], { context: createSecureContext({ cert: acme.cert.toPem(), key: keyPem(acme.key) }), app: apps.acme! });
    api = await startApiListener({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: node.cert.toPem(), key: keyPem(node.key) },
      sniCallback: sniCallback((name) => router.route(name).value.context ?? undefined),
      route: (s) => stackOf(router.route(s.servername).value.app),
    });
    pub = await startPublicListener({ host: '127.0.0.1', port: 0, fallback: () => stackOf(apps.default!), tenant: (n) => (n === 'acme' ? stackOf(apps.acme!) : undefined) });
  });
  after(async () => {
    await api.close();
    await pub.close();
    for (const a of Object.values(apps)) await a.close();
  });

  const get = (servername: string | undefined, withCert: boolean) =>
    new Promise<{ status: number; body: Record<string, unknown>; serverCn: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1', port: api.port, path: '/who', ca: root.cert.toPem(), agent: false,
          ...(servername ? { servername } : { servername: 'localhost' }),
          ...(withCert ? { cert: client.cert.toPem(), key: keyPem(client.key) } : {}),
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown>, serverCn: (res.socket as TLSSocket).getPeerCertificate().subject.CN as string }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  it("hands a connection to the API of the tenant its SNI selects, with that tenant's certificate, the client certificate still readable", async () => {
    const r = await get('a.example', true);
    assert.deepEqual([r.status, r.serverCn, r.body], [200, 'acme', { tenant: 'acme', protocol: 'https', client: 'device-1' }]);
    const d = await get('localhost', false);
    assert.deepEqual([d.serverCn, d.body], ['node', { tenant: 'default', protocol: 'https', client: null }]);
  });

  it('still lets a tenant app be driven with inject()', async () => {
    const r = await apps.acme!.inject({ method: 'GET', url: '/crl/x.crl' });
    assert.deepEqual(r.json(), { tenant: 'acme', url: '/crl/x.crl' });
  });

  it('routes /tenants/NAME/… on the http port to that tenant with its own paths, everything else to the default tenant', async () => {
    const at = (p: string) => fetch(`http://127.0.0.1:${pub.port}${p}`);
    assert.deepEqual(await (await at('/tenants/acme/crl/ca-1.crl')).json(), { tenant: 'acme', url: '/crl/ca-1.crl' });
    assert.deepEqual(await (await at('/crl/ca-1.crl')).json(), { tenant: 'default', url: '/crl/ca-1.crl' });
    const none = await at('/tenants/nobody/crl/ca-1.crl');
    assert.equal(none.status, 404);
    assert.equal(((await none.json()) as { code: string }).code, 'not-found');
  });

  it('refuses a port in use plainly', async () => {
    await assert.rejects(startPublicListener({ host: '127.0.0.1', port: pub.port, fallback: () => undefined, tenant: () => undefined }), { code: 'unavailable' });
  });
});
