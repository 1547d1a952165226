import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import { certsOnlyPkcs7, verifyCsr, type Certificate } from '@certfleet/pki';
import type { AgentError } from '../errors.js';
import { MemoryKeyStore } from '../simulate/memory-key.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from '../testing/pki-fixtures.js';
import { EstClient, retryAfterMs } from './est-client.js';
import { parseCertsOnlyPkcs7 } from './pkcs7.js';

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A small EST server: answers each request from `script` in turn, records what it got. */
async function estServer(tls: { cert: string; key: string }, script: ((s: Seen) => { status: number; headers?: Record<string, string>; body?: string })[]) {
  const seen: Seen[] = [];
  const server: Server = createServer(tls, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s = { method: req.method!, path: req.url!, headers: req.headers, body };
      seen.push(s);
      const step = script.shift();
      const a = step ? step(s) : { status: 500 };
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const pkcs7 = (certs: Certificate[]) => ({
  status: 200,
  headers: { 'content-type': 'application/pkcs7-mime; smime-type=certs-only', 'content-transfer-encoding': 'base64' },
  body: (certsOnlyPkcs7(certs).toString('base64').match(/.{1,64}/g) ?? []).join('\n') + '\n',
});

describe('EstClient (RFC 7030)', () => {
  let root: TestCa;
  let issuing: TestCa;
  let tls: { cert: string; key: string };
  before(() => {
    root = makeRoot('CN=EST Root');
    issuing = makeIntermediate(root, 'CN=EST Issuing');
    const s = issueLeaf(issuing, { profile: 'server', name: 'CN=localhost' });
    tls = { cert: s.certPem + issuing.cert.toPem(), key: s.keyPem };
  });
  const sign = (s: Seen) => pkcs7([issueLeaf(issuing, { name: 'CN=dev-est', publicKey: verifyCsr(Buffer.from(s.body.replace(/\s+/g, ''), 'base64')).publicKey.key }).cert]);

  it('parses a certs-only PKCS#7 in order', () => {
    const certs = parseCertsOnlyPkcs7(certsOnlyPkcs7([issuing.cert, root.cert]));
    assert.deepEqual(certs.map((c) => c.subject()), ['CN=EST Issuing', 'CN=EST Root']);
    assert.throws(() => parseCertsOnlyPkcs7(Buffer.from('3003020101', 'hex')), (e: AgentError) => e.code === 'bad-response');
  });

  it('reads cacerts and enrolls with HTTP Basic: application/pkcs10, base64 body, the secret in Authorization', async () => {
    const ep = await estServer(tls, [() => pkcs7([issuing.cert, root.cert]), sign]);
    try {
      const est = new EstClient({ url: ep.url, ca: root.cert.toPem() });
      assert.equal((await est.cacerts()).length, 2);
      const key = MemoryKeyStore.generate();
      const [leaf] = await est.simpleenroll(key.createCsr('CN=dev-est'), { username: 'dev-est', password: 'one-time-secret' });
      assert.ok(key.matches(leaf!));
      const enroll = ep.seen[1]!;
      assert.equal(enroll.path, '/.well-known/est/simpleenroll');
      assert.equal(enroll.headers['content-type'], 'application/pkcs10');
      assert.equal(enroll.headers['content-transfer-encoding'], 'base64');
      assert.equal(enroll.headers.authorization, `Basic ${Buffer.from('dev-est:one-time-secret').toString('base64')}`);
      assert.match(enroll.body, /^[A-Za-z0-9+/=\n]+$/);
    } finally {
      await ep.close();
    }
  });

  it('waits as 202 + Retry-After asks and sends the request again (§4.2.3)', async () => {
    const waits: number[] = [];
    const ep = await estServer(tls, [() => ({ status: 202, headers: { 'retry-after': '2' } }), () => ({ status: 202, headers: { 'retry-after': '1' } }), sign]);
    try {
      const est = new EstClient({ url: ep.url, ca: root.cert.toPem(), sleep: async (ms) => waits.push(ms) });
      const key = MemoryKeyStore.generate();
      const [leaf] = await est.simpleenroll(key.createCsr('CN=dev-est'), { username: 'u', password: 'p' });
      assert.ok(key.matches(leaf!));
      assert.deepEqual(waits, [2000, 1000]);
      assert.equal(ep.seen.length, 3);
      assert.equal(ep.seen[2]!.body, ep.seen[0]!.body, 'the same request is sent again');
    } finally {
      await ep.close();
    }
  });

  it("reports 'pending' when the wait would pass its budget", async () => {
    const ep = await estServer(tls, [() => ({ status: 202, headers: { 'retry-after': '3600' } })]);
    try {
      const est = new EstClient({ url: ep.url, ca: root.cert.toPem(), maxPendingMs: 60_000 });
      await assert.rejects(est.simpleenroll(MemoryKeyStore.generate().createCsr('CN=x'), { username: 'u', password: 'p' }), (e: AgentError) => e.code === 'pending' && /3600 s/.test(e.message));
    } finally {
      await ep.close();
    }
  });

  const refusals = [
    { name: 'a 401 problem', answer: { status: 401, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify({ code: 'unauthorized', detail: 'bad secret' }) }, code: 'rejected', match: /401 unauthorized: bad secret/ },
    { name: 'a wrong content type', answer: { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>' }, code: 'bad-response', match: /text\/html/ },
    { name: 'a body that is not base64', answer: { status: 200, headers: { 'content-type': 'application/pkcs7-mime' }, body: '!!!' }, code: 'bad-response', match: /base64/ },
  ];
  for (const r of refusals) {
    it(`turns ${r.name} into a clear error`, async () => {
      const ep = await estServer(tls, [() => r.answer]);
      try {
        const est = new EstClient({ url: ep.url, ca: root.cert.toPem() });
        await assert.rejects(est.simpleenroll(MemoryKeyStore.generate().createCsr('CN=x'), { username: 'u', password: 'p' }), (e: AgentError) => e.code === r.code && r.match.test(e.message));
      } finally {
        await ep.close();
      }
    });
  }

  it('never sends the secret to a server outside the trust store', async () => {
    const ep = await estServer(tls, [sign]);
    try {
      const stranger = makeRoot('CN=Stranger');
      const est = new EstClient({ url: ep.url, ca: stranger.cert.toPem() });
      await assert.rejects(est.simpleenroll(MemoryKeyStore.generate().createCsr('CN=x'), { username: 'u', password: 'p' }), (e: AgentError) => e.code === 'unreachable');
      assert.equal(ep.seen.length, 0);
    } finally {
      await ep.close();
    }
  });

  it('reads Retry-After as seconds or an HTTP-date', () => {
    assert.equal(retryAfterMs('120'), 120_000);
    assert.equal(retryAfterMs(new Date(61_000).toUTCString(), 1_000), 60_000);
    assert.equal(retryAfterMs('soon'), undefined);
  });

});
