import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { decodePem, verifyCsr } from '@certfleet/pki';
import { TimeFloor } from '../clock.js';
import type { AgentError } from '../errors.js';
import { MemoryKeyStore } from '../simulate/memory-key.js';
import { CertificateSlots } from '../slots.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from '../testing/pki-fixtures.js';
import { isFallbackRefusal, isNotExpired, renewExpired, RENEW_EXPIRED_PATH, type ExpiredRenewalRefused } from './renew-expired.js';

const DAY = 86_400_000;

/**
 * The api port's side of renewal after expiry, small and in process: it
 * takes the expired certificate as TLS client certificate (Node would
 * refuse it by date, so it is read, not verified) and answers as scripted.
 */
interface Seen {
  path: string;
  clientCn: string | undefined;
  csrPem: string;
}

describe('renewal after expiry over the api port', () => {
  let root: TestCa;
  let issuing: TestCa;
  let server: Server;
  let url: string;
  let answer: (s: Seen) => { status: number; body: unknown };
  const seen: Seen[] = [];

  before(async () => {
    root = makeRoot('CN=Api Root');
    issuing = makeIntermediate(root, 'CN=Api Issuing');
    const tls = issueLeaf(issuing, { profile: 'server', name: 'CN=localhost' });
    server = createServer({ cert: tls.certPem + issuing.cert.toPem(), key: tls.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        const s = { path: req.url!, clientCn: peer?.subject?.CN as string | undefined, csrPem: (JSON.parse(body) as { csr: string }).csr };
        seen.push(s);
        const a = answer(s);
        res.writeHead(a.status, { 'content-type': a.status < 300 ? 'application/json' : 'application/problem+json' });
        res.end(JSON.stringify(a.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  let dir: string;
  let slots: CertificateSlots;
  let floor: TimeFloor;
  beforeEach(async () => {
    seen.length = 0;
    dir = await mkdtemp(join(tmpdir(), 'certfleet-expired-'));
    slots = await CertificateSlots.open(dir);
    const expired = issueLeaf(issuing, { name: 'CN=dev-late', now: new Date(Date.now() - 100 * DAY), validityDays: 30 });
    await slots.writeNext({ certificatePem: expired.certPem, chainPem: issuing.cert.toPem(), keyPem: expired.keyPem });
    await slots.promote();
    floor = await TimeFloor.open(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const verifyServer = (roots: () => TestCa[]) => (pems: string[]) => void floor.validateServerChain(pems, roots().map((r) => r.cert));
  const sign = (s: Seen) => {
    const csr = verifyCsr(decodePem(s.csrPem, 'CERTIFICATE REQUEST'));
    const leaf = issueLeaf(issuing, { name: 'CN=dev-late', publicKey: csr.publicKey.key });
    return { status: 201, body: { id: leaf.cert.fingerprint(), serial: leaf.cert.serial(), certificatePem: leaf.certPem, chainPem: issuing.cert.toPem() } };
  };

  it('sends a CSR with the old subject and a new key, authenticated by the expired certificate; writes the answer to next', async () => {
    answer = sign;
    const old = (await slots.current())!;
    const next = await renewExpired({ slots, api: url, verifyServer: verifyServer(() => [root]) });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.path, RENEW_EXPIRED_PATH);
    assert.equal(seen[0]!.clientCn, 'dev-late', 'the expired certificate was the TLS client certificate');
    assert.equal(next.certificate.subject(), old.certificate.subject());
    assert.ok(!next.certificate.publicKey.equals(old.certificate.publicKey), 'a new key');
    assert.equal(next.certificateId, next.certificate.fingerprint());
    assert.equal(await slots.nextState(), 'complete', 'waiting in next for the trial');
    assert.equal((await slots.current())!.certificate.serial(), old.certificate.serial(), 'current untouched until promoted');
  });

  it("takes the server's certificateId, and still the certificate route's id", async () => {
    answer = (seenNow) => {
      const signed = sign(seenNow);
      const { id, ...rest } = signed.body;
      return { status: 201, body: { ...rest, certificateId: `server-${id}` } };
    };
    const fromServer = await renewExpired({ slots, api: url, verifyServer: verifyServer(() => [root]) });
    assert.equal(fromServer.certificateId, `server-${fromServer.certificate.fingerprint()}`);
    await slots.discardNext();
    answer = sign;
    const fromId = await renewExpired({ slots, api: url, verifyServer: verifyServer(() => [root]) });
    assert.equal(fromId.certificateId, fromId.certificate.fingerprint());
  });

  // What POST /api/v1/renew-expired answers (docs/device-protocol.md), and what the device does next.
  const problem = (status: number, code: string, extra: Record<string, unknown> = {}) => ({ type: 'about:blank', status, code, detail: 'refused', ...extra });
  const outcomes: { name: string; status: number; body: unknown; next: 'claim' | 'renew-normally' | 'retry' }[] = [
    { name: 'renewal after expiry off for its CA (403, fallback claim)', status: 403, body: problem(403, 'forbidden', { reason: 'RenewalAfterExpiryDisabled', fallback: 'claim' }), next: 'claim' },
    { name: 'expired too long ago (403, fallback claim)', status: 403, body: problem(403, 'forbidden', { reason: 'ExpiredTooLongAgo', fallback: 'claim' }), next: 'claim' },
    { name: 'a 403 without fallback', status: 403, body: problem(403, 'forbidden'), next: 'claim' },
    { name: 'an unknown certificate (404)', status: 404, body: problem(404, 'not-found'), next: 'claim' },
    { name: 'a certificate the server sees as valid (409 NotExpired)', status: 409, body: problem(409, 'conflict', { reason: 'NotExpired' }), next: 'renew-normally' },
    { name: 'a 409 that is not a problem document', status: 409, body: 'conflict', next: 'renew-normally' },
    { name: 'a server error (503)', status: 503, body: problem(503, 'unavailable'), next: 'retry' },
    { name: 'a malformed request (400 SubjectMismatch)', status: 400, body: problem(400, 'bad-request', { reason: 'SubjectMismatch' }), next: 'retry' },
  ];
  for (const o of outcomes) {
    it(`${o.next === 'claim' ? 'falls back to the claim flow' : o.next === 'renew-normally' ? 'renews the ordinary way' : 'retries later'} on ${o.name}`, async () => {
      answer = () => ({ status: o.status, body: o.body });
      await assert.rejects(renewExpired({ slots, api: url, verifyServer: verifyServer(() => [root]) }), (e: AgentError) => {
        assert.equal(e.code, 'rejected');
        assert.equal(e.rejection?.statusCode, o.status);
        assert.equal(isFallbackRefusal(e), o.next === 'claim');
        assert.equal(isNotExpired(e), o.next === 'renew-normally');
        if (typeof o.body === 'object' && (o.body as { reason?: string }).reason) assert.equal((e as ExpiredRenewalRefused).reason, (o.body as { reason: string }).reason);
        return true;
      });
      assert.notEqual(await slots.nextState(), 'complete');
    });
  }

  it('refuses an answer for another key, and never talks to a server outside the trust store', async () => {
    // Signed for a key the device never made.
    answer = () => sign({ path: '', clientCn: '', csrPem: MemoryKeyStore.generate().createCsr('CN=dev-late') });
    await assert.rejects(renewExpired({ slots, api: url, verifyServer: verifyServer(() => [root]) }), (e: AgentError) => e.code === 'bad-response');
    seen.length = 0;
    answer = sign;
    await assert.rejects(renewExpired({ slots, api: url, verifyServer: verifyServer(() => [makeRoot('CN=Stranger')]) }), (e: AgentError) => e.code === 'chain-invalid');
    assert.equal(seen.length, 0, 'nothing was sent');
  });
});
