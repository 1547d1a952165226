import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName, validateChain, OID } from '@certfleet/pki';
import type { FastifyInstance } from 'fastify';
import { testNode, type TestNode } from '../testing/services.js';
import { buildApi } from './api.js';

let node: TestNode;
let app: FastifyInstance;
let admin: string;

before(async () => {
  node = await testNode();
  app = await buildApi(node.s);
  admin = await node.token('admin');
});
after(async () => {
  await app.close();
  await node.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function csr(cn = 'dev-1', alg: Parameters<typeof generateKeyPair>[0] = 'ec-p256'): string {
  const { privateKey, publicKey } = generateKeyPair(alg);
  return buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey });
}

describe('POST /api/v1/certificates', () => {
  it('signs a CSR for a thing, stores it before answering, and the chain validates', async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/things', headers: auth(admin), payload: { name: 'sensor-1', attributes: { site: 'osaka' } } })).statusCode, 201);
    const res = await app.inject({ method: 'POST', url: '/api/v1/certificates', headers: auth(admin), payload: { csr: csr('ignored'), thing: 'sensor-1' } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<{ id: string; serial: string; certificatePem: string; chainPem: string }>();
    const cert = Certificate.fromPem(body.certificatePem);
    assert.equal(cert.subject(), 'CN=sensor-1', 'the thing name decides the CN, not the CSR');
    assert.equal(cert.serial(), body.serial);
    assert.equal(cert.fingerprint(), body.id);
    const chain = Certificate.allFromPem(body.chainPem);
    assert.equal(chain.length, 2);
    validateChain(cert, { intermediates: [chain[0]!], roots: [chain[1]!], at: new Date(), purpose: OID.clientAuth });
    const stored = await node.s.store.getCertificate(body.id);
    assert.equal(stored?.thingName, 'sensor-1');
    assert.equal(stored?.status, 'active');
    assert.ok(await node.s.store.hasSerial(body.serial), 'the serial was journalled');
  });

  it('lists with filters and pages', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({ method: 'POST', url: '/api/v1/certificates', headers: auth(admin), payload: { csr: csr(`page-${i}`), validityDays: 10 + 2 * i } });
      assert.equal(r.statusCode, 201, r.body);
    }
    const soon = await app.inject({ method: 'GET', url: '/api/v1/certificates?expiringWithinDays=11', headers: auth(admin) });
    assert.deepEqual(soon.json<{ items: { subject: string }[] }>().items.map((c) => c.subject).sort(), ['CN=page-0']);
    const first = await app.inject({ method: 'GET', url: '/api/v1/certificates?limit=2', headers: auth(admin) });
    const p1 = first.json<{ items: { id: string }[]; next?: string }>();
    assert.equal(p1.items.length, 2);
    assert.ok(p1.next);
    const second = await app.inject({ method: 'GET', url: `/api/v1/certificates?limit=2&cursor=${p1.next}`, headers: auth(admin) });
    const p2 = second.json<{ items: { id: string }[] }>();
    assert.equal(new Set([...p1.items, ...p2.items].map((c) => c.id)).size, p1.items.length + p2.items.length);
    const byThing = await app.inject({ method: 'GET', url: '/api/v1/certificates?thing=sensor-1', headers: auth(admin) });
    assert.equal(byThing.json<{ items: unknown[] }>().items.length, 1);
  });

  it('generates a key pair in the development phase', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/certificates/generate', headers: auth(admin), payload: { commonName: 'bench-1', keyAlgorithm: 'ed25519' } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<{ privateKeyPem: string; certificatePem: string }>();
    assert.match(body.privateKeyPem, /BEGIN PRIVATE KEY/);
    assert.equal(Certificate.fromPem(body.certificatePem).keyAlgorithm(), 'ed25519');
  });
});

describe('bad input gets a 4xx problem with a stable code', () => {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const good = buildCsrPem({ subject: parseName('CN=x'), privateKey, publicKey });
  const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const flipped = Buffer.from(der);
  flipped[flipped.length - 5]! ^= 0x01;
  const pem = (b: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const weak = buildCsrPem({ subject: parseName('CN=weak'), privateKey: rsa1024.privateKey, publicKey: rsa1024.publicKey });

  const cases: Array<{ name: string; body?: unknown; raw?: string; type?: string; status: number; code: string }> = [
    { name: 'malformed PEM', body: { csr: 'not a pem' }, status: 400, code: 'malformed-pem' },
    { name: 'bad base64', body: { csr: '-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n' }, status: 400, code: 'malformed-pem' },
    { name: 'malformed DER', body: { csr: pem(der.subarray(0, der.length - 10)) }, status: 400, code: 'malformed-csr' },
    { name: 'bad CSR signature', body: { csr: pem(flipped) }, status: 400, code: 'bad-signature' },
    { name: 'RSA 1024', body: { csr: weak }, status: 400, code: 'weak-key' },
    { name: 'unknown thing', body: { csr: good, thing: 'nope' }, status: 404, code: 'not-found' },
    { name: 'unknown profile', body: { csr: good, profile: 'root-ca' }, status: 400, code: 'bad-request' },
    { name: 'extra field', body: { csr: good, isCA: true }, status: 400, code: 'bad-request' },
    { name: 'missing csr', body: {}, status: 400, code: 'bad-request' },
    { name: 'invalid JSON', raw: '{"csr": ', type: 'application/json', status: 400, code: 'bad-request' },
    { name: 'wrong content type', raw: good, type: 'application/pkcs10', status: 415, code: 'unsupported-media-type' },
    { name: 'oversized body', raw: JSON.stringify({ csr: 'A'.repeat(100_000) }), type: 'application/json', status: 413, code: 'payload-too-large' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/certificates',
        headers: { ...auth(admin), ...(c.type ? { 'content-type': c.type } : {}) },
        ...(c.raw !== undefined ? { payload: c.raw } : { payload: c.body as object }),
      });
      assert.equal(res.statusCode, c.status, res.body);
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
      assert.equal(res.json<{ code: string }>().code, c.code);
    });
  }

  it('an unknown curve (secp256k1) is refused', async () => {
    // pki will not sign with secp256k1, so the real openssl makes the request.
    const k1 = execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=k1'], { encoding: 'utf8' });
    const res = await app.inject({ method: 'POST', url: '/api/v1/certificates', headers: auth(admin), payload: { csr: k1 } });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json<{ code: string }>().code, 'unsupported-algorithm');
  });
});

describe('authentication and scopes', () => {
  it('no token is 401, a bad token is 401, a token without the scope is 403', async () => {
    const none = await app.inject({ method: 'GET', url: '/api/v1/certificates' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ code: string }>().code, 'unauthorized');
    const bad = await app.inject({ method: 'GET', url: '/api/v1/certificates', headers: auth('cf_nope') });
    assert.equal(bad.statusCode, 401);
    const auditor = await node.token('auditor');
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/certificates', headers: auth(auditor) })).statusCode, 200);
    const write = await app.inject({ method: 'POST', url: '/api/v1/things', headers: auth(auditor), payload: { name: 'x' } });
    assert.equal(write.statusCode, 403);
    assert.equal(write.json<{ code: string }>().code, 'forbidden');
    const prov = await node.token('provisioner');
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/cas', headers: auth(prov), payload: { name: 'x' } })).statusCode, 403);
  });

  it('the OpenAPI document is served and names the contract routes', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json<{ openapi: string; paths: Record<string, unknown> }>();
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/v1/things', '/api/v1/certificates', '/api/v1/cas']) assert.ok(doc.paths[p], p);
  });
});

describe('tokens', () => {
  it('an admin creates a scoped, expiring token; it works until revoked; secrets are never listed', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth(admin), payload: { name: 'ci', scopes: ['auditor'], expiresInDays: 30 } });
    assert.equal(res.statusCode, 201, res.body);
    const t = res.json<{ id: string; token: string; expiresAt: string }>();
    assert.match(t.token, /^cf_/);
    assert.ok(Math.abs(new Date(t.expiresAt).getTime() - Date.now() - 30 * 86_400_000) < 60_000);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/certificates', headers: auth(t.token) })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(t.token) })).statusCode, 403, 'listing tokens is for admins');
    const list = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(admin) });
    assert.ok(!list.body.includes(t.token), 'a secret is never listed');
    const listed = list.json<{ items: { id: string; lastUsedAt: string | null }[] }>().items.find((x) => x.id === t.id);
    assert.ok(listed?.lastUsedAt, 'last use is recorded');
    assert.equal((await app.inject({ method: 'POST', url: `/api/v1/tokens/${t.id}/revoke`, headers: auth(admin) })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/certificates', headers: auth(t.token) })).statusCode, 401);
  });

  it('an expired token is refused', async () => {
    const { token } = await node.s.tokens.create('old', ['admin'], new Date(Date.now() - 1000));
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/things', headers: auth(token) })).statusCode, 401);
  });

  it('bad token requests change nothing', async () => {
    const before = (await node.s.store.listTokens()).length;
    for (const payload of [{ scopes: [] }, { scopes: ['root'] }, { scopes: ['admin'], extra: 1 }, { scopes: ['admin'], name: 'bad\u0007name' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth(admin), payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
    }
    assert.equal((await node.s.store.listTokens()).length, before);
  });
});

describe('OpenAPI', () => {
  it('the document validates as OpenAPI 3 (swagger-parser)', async () => {
    const { default: SwaggerParser } = await import('@apidevtools/swagger-parser');
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json<object>();
    // validate() dereferences and checks against the OpenAPI 3.x schema; it throws on any violation.
    const api = (await SwaggerParser.validate(structuredClone(doc) as never)) as { paths: Record<string, unknown> };
    assert.ok(Object.keys(api.paths).length >= 8);
  });
});
