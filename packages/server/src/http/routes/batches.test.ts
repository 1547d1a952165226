import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName, validateChain } from '@certfleet/pki';
import type { FastifyInstance } from 'fastify';
import { testNode, type TestNode } from '../../testing/services.js';
import { buildApi } from '../api.js';

let node: TestNode;
let app: FastifyInstance;

before(async () => {
  node = await testNode();
  app = await buildApi(node.s);
});
after(async () => {
  await app.close();
  await node.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
function csr(cn: string): string {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  return buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey });
}

interface Answer {
  items: { thing: string; certificateId?: string; serial?: string; certificatePem?: string; fingerprint?: string; reused?: boolean; error?: { code: string; detail: string } }[];
  chainPem: string;
  caPem: string;
}

describe('POST /api/v1/batches/issue', () => {
  it('signs 1,000 CSRs in one request (a body above the API-wide 64 KiB limit), each chain valid; a bad item fails alone', async () => {
    const token = await node.token('provisioner');
    const items = Array.from({ length: 1000 }, (_, i) => ({ thing: `h-${i}`, csr: csr('x') }));
    items[500] = { thing: 'h-500', csr: 'garbage' };
    const res = await app.inject({ method: 'POST', url: '/api/v1/batches/issue', headers: auth(token), payload: { items, validityDays: 30 } });
    assert.equal(res.statusCode, 201, res.body.slice(0, 300));
    const body = res.json<Answer>();
    assert.equal(body.items.length, 1000);
    assert.equal(body.items[500]!.error?.code, 'malformed-pem');
    const chain = Certificate.allFromPem(body.chainPem);
    assert.equal(body.caPem, chain[chain.length - 1]!.toPem());
    for (const item of body.items.filter((_, i) => i % 100 === 1)) {
      const cert = Certificate.fromPem(item.certificatePem!);
      assert.equal(cert.fingerprint(), item.certificateId);
      assert.equal(item.fingerprint, item.certificateId);
      assert.equal(cert.serial(), item.serial);
      assert.equal(cert.subject(), `CN=${item.thing}`);
      validateChain(cert, { intermediates: chain.slice(0, -1), roots: [chain[chain.length - 1]!], at: new Date() });
    }
  });

  it('needs a token (401) with the operator or provisioner scope (403), and refuses malformed bodies with 4xx', async () => {
    const payload = { items: [{ thing: 'z-1', csr: csr('z') }] };
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/batches/issue', payload })).statusCode, 401);
    const auditor = await node.token('auditor');
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/batches/issue', headers: auth(auditor), payload })).statusCode, 403);
    const op = await node.token('operator');
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method: 'POST', url: '/api/v1/batches/issue', headers: { ...auth(op), ...headers }, payload: body as never });
    assert.equal((await post({ items: [] })).statusCode, 400);
    assert.equal((await post({ items: [{ thing: 'z-1' }] })).statusCode, 400);
    assert.equal((await post({ items: payload.items, extra: 1 })).statusCode, 400);
    assert.equal((await post({ items: Array.from({ length: 1001 }, (_, i) => ({ thing: `y-${i}`, csr: 'x' })) })).statusCode, 400);
    assert.equal((await post({ items: payload.items, policies: ['missing'] })).statusCode, 404);
    assert.equal((await post('{"items":', { 'content-type': 'application/json' })).statusCode, 400);
    assert.equal((await post(payload.items, { 'content-type': 'text/plain' })).statusCode, 415);
    const ok = await post(payload);
    assert.equal(ok.statusCode, 201);
    const again = await post(payload);
    assert.equal(again.json<Answer>().items[0]!.reused, true);
    assert.equal(again.json<Answer>().items[0]!.certificateId, ok.json<Answer>().items[0]!.certificateId);
  });

  it('is in the OpenAPI document, which stays valid', async () => {
    const { default: SwaggerParser } = await import('@apidevtools/swagger-parser');
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json<object>();
    const api = (await SwaggerParser.validate(structuredClone(doc) as never)) as { paths: Record<string, unknown> };
    assert.ok(api.paths['/api/v1/batches/issue']);
  });
});
