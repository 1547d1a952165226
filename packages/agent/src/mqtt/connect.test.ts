import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { TimeFloor } from '../clock.js';
import type { AgentError } from '../errors.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from '../testing/pki-fixtures.js';
import { connectMqtt } from './connect.js';

const DAY = 86_400_000;
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]); // MQTT 3.1.1 §3.2: session present 0, accepted

/**
 * The smallest MQTT-over-mTLS endpoint that lets a client finish connecting:
 * it demands a client certificate from `clientCa` and answers the first
 * packet with CONNACK. Records the client certificates it saw.
 */
async function tlsEndpoint(serverChain: { cert: string; key: string }, clientCa: TestCa) {
  const seen: string[] = [];
  const server: Server = createServer({ ...serverChain, ca: clientCa.cert.toPem(), requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
    seen.push(s.getPeerCertificate().subject.CN as string);
    s.once('data', () => s.write(CONNACK));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('connectMqtt over TLS with the time floor', () => {
  let work: string;
  let root: TestCa;
  let claimCa: TestCa;
  let claim: { certificatePem: string; keyPem: string };
  let floor: TimeFloor;
  const now = Date.now();

  function serverCert(issuedAt: number, days = 90) {
    const issuing = makeIntermediate(root, 'CN=Server Issuing', { now: new Date(now - 400 * DAY) });
    const leaf = issueLeaf(issuing, { profile: 'server', name: 'CN=localhost', now: new Date(issuedAt), validityDays: days });
    return { cert: leaf.certPem + issuing.cert.toPem(), key: leaf.keyPem };
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certfleet-connect-'));
    root = makeRoot('CN=Server Root', { now: new Date(now - 800 * DAY) });
    claimCa = makeRoot('CN=Claim CA');
    const c = issueLeaf(claimCa, { name: 'CN=claim-batch-7' });
    claim = { certificatePem: c.certPem, keyPem: c.keyPem };
    // The device's RTC reads 1970; all it knows is the floor, a month back.
    floor = await TimeFloor.open(work, { buildFloor: new Date(now - 30 * DAY), wallClock: () => new Date(0) });
  });
  after(() => rm(work, { recursive: true, force: true }));

  const verifyWith = (roots: TestCa[]) => (pems: string[]) => void floor.validateServerChain(pems, roots.map((r) => r.cert));

  it('a device at 1970 verifies the server by the floor and connects with its client certificate', async () => {
    const ep = await tlsEndpoint(serverCert(now - DAY), claimCa);
    try {
      const client = await connectMqtt({ url: ep.url, servername: 'localhost', clientId: 'dev-1', ...claim, verifyServer: verifyWith([root]), timeoutMs: 3000 });
      assert.ok(client.connected);
      assert.deepEqual(ep.seen, ['claim-batch-7']);
      await client.endAsync(true);
    } finally {
      await ep.close();
    }
  });

  const refusals: { name: string; issuedAt: number; days?: number; roots?: () => TestCa[]; servername?: string; code: AgentError['code']; match: RegExp }[] = [
    { name: 'a server chain to a root it does not trust', issuedAt: now - DAY, roots: () => [makeRoot('CN=Stranger')], code: 'chain-invalid', match: /no trusted issuer|issuer/ },
    { name: 'a server certificate that expired before the floor', issuedAt: now - 200 * DAY, days: 60, code: 'expired-before-floor', match: /before the time floor/ },
    { name: 'a certificate for another host name', issuedAt: now - DAY, servername: 'mqtt.example.com', code: 'chain-invalid', match: /not for mqtt.example.com/ },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      const ep = await tlsEndpoint(serverCert(r.issuedAt, r.days), claimCa);
      try {
        await assert.rejects(
          connectMqtt({ url: ep.url, servername: r.servername ?? 'localhost', clientId: 'dev-1', ...claim, verifyServer: verifyWith(r.roots?.() ?? [root]), timeoutMs: 3000 }),
          (e: AgentError) => e.code === r.code && r.match.test(e.message),
        );
      } finally {
        await ep.close();
      }
    });
  }

  it('without verifyServer, leaves verification to Node with the given roots', async () => {
    const ep = await tlsEndpoint(serverCert(now - DAY), claimCa);
    try {
      const client = await connectMqtt({ url: ep.url, servername: 'localhost', clientId: 'dev-1', ...claim, ca: root.cert.toPem(), timeoutMs: 3000 });
      await client.endAsync(true);
      await assert.rejects(
        connectMqtt({ url: ep.url, servername: 'localhost', clientId: 'dev-1', ...claim, ca: claimCa.cert.toPem(), timeoutMs: 3000 }),
        (e: AgentError) => e.code === 'unreachable',
      );
    } finally {
      await ep.close();
    }
  });

  it('refuses a URL that is not MQTT', async () => {
    await assert.rejects(connectMqtt({ url: 'https://localhost', clientId: 'x' }), (e: AgentError) => e.code === 'bad-input');
  });
});
