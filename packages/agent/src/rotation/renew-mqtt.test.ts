import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { Certificate, commonName, decodePem, verifyCsr } from '@certfleet/pki';
import type { AgentError } from '../errors.js';
import { CertificateSlots, type Identity } from '../slots.js';
import { TrustStore } from '../trust-store.js';
import { issueLeaf, makeRoot, type TestCa } from '../testing/pki-fixtures.js';
import { applyTrustBundle, parseTrustBundle } from './trust-bundle.js';
import { renewOverMqtt } from './renew-mqtt.js';

/**
 * A real MQTT broker (aedes, in process, plain TCP) with a stand-in for the
 * platform's side of docs/device-protocol.md as a client on it. The device
 * identifies itself by client id here (`<thing>/<certificate serial>`):
 * TLS admission is the server's part, driven end to end in
 * test/agent-rotation.test.ts.
 */
type Mode = 'ok' | 'reject-renew' | 'reject-confirm' | 'wrong-key' | 'silent-confirm';

const THING = 'dev-rot-1';

async function writeIdentity(slots: CertificateSlots, ca: TestCa, name: string): Promise<Identity> {
  const leaf = issueLeaf(ca, { name });
  await slots.writeNext({ certificatePem: leaf.certPem, keyPem: leaf.keyPem });
  return slots.promote();
}

describe('renewal over MQTT and trust bundles', () => {
  let server: Server;
  let url: string;
  let platform: MqttClient;
  let ca: TestCa;
  let work: string;
  let mode: Mode = 'ok';
  const confirms: { certificateId: string; clientId: string }[] = [];
  const acks: unknown[] = [];
  let closeBroker: () => void;

  before(async () => {
    ca = makeRoot('CN=Rotation CA');
    const clientIds = new Map<string, string>();
    // Recorded as the broker authorises the publish, i.e. before any subscriber sees it.
    const broker = await Aedes.createBroker({
      authorizePublish: (client, packet, done) => {
        if (client) clientIds.set(packet.topic, client.id);
        done(null);
      },
    });
    server = createServer(broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closeBroker = () => broker.close();
    platform = await mqtt.connectAsync(url, { clientId: 'platform', reconnectPeriod: 0 });
    const answer = (topic: string, outcome: 'accepted' | 'rejected', body: unknown) => void platform.publish(`${topic}/${outcome}`, JSON.stringify(body), { qos: 1 });
    platform.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as Record<string, string>;
      if (topic.endsWith('/certificate/renew')) {
        if (mode === 'reject-renew') return answer(topic, 'rejected', { statusCode: 403, errorCode: 'Forbidden', errorMessage: 'no campaign' });
        const csr = verifyCsr(decodePem(body.certificateSigningRequest!, 'CERTIFICATE REQUEST'));
        const leaf = issueLeaf(ca, { name: `CN=${commonName(csr.subject)}`, ...(mode === 'wrong-key' ? {} : { publicKey: csr.publicKey.key }) });
        return answer(topic, 'accepted', { certificateId: leaf.cert.serial(), certificatePem: leaf.certPem, chainPem: '', ...(body.campaignId ? { campaignId: body.campaignId } : {}) });
      }
      if (topic.endsWith('/certificate/confirm')) {
        confirms.push({ certificateId: body.certificateId!, clientId: clientIds.get(topic) ?? '' });
        if (mode === 'silent-confirm') return; // recorded, answer lost
        if (mode === 'reject-confirm') return answer(topic, 'rejected', { statusCode: 400, errorCode: 'NotThisConnection', errorMessage: 'confirm on the new certificate' });
        return answer(topic, 'accepted', { certificateId: body.certificateId, retiring: ['old-1'] });
      }
      if (topic.endsWith('/trust-bundle/ack')) {
        acks.push(body);
        return answer(topic, 'accepted', body);
      }
    });
    await platform.subscribeAsync(['$certfleet/things/+/certificate/renew', '$certfleet/things/+/certificate/confirm', '$certfleet/things/+/trust-bundle/ack'], { qos: 1 });
  });
  after(async () => {
    await platform?.endAsync();
    closeBroker?.();
    await new Promise<void>((r) => server.close(() => r()));
  });

  let slots: CertificateSlots;
  let first: Identity;
  beforeEach(async () => {
    mode = 'ok';
    confirms.length = 0;
    work = await mkdtemp(join(tmpdir(), 'certfleet-rot-'));
    slots = await CertificateSlots.open(work);
    first = await writeIdentity(slots, ca, `CN=${THING}`);
  });

  const connectAs = (identity: Identity) => mqtt.connectAsync(url, { clientId: `${THING}/${identity.certificate.serial()}`, reconnectPeriod: 0 });

  it('renews: CSR with the same subject and a new key, trial connection with the new certificate, confirm on it, then promote', async () => {
    const client = await connectAs(first);
    const renewed = await renewOverMqtt({ slots, thing: THING, client, connect: connectAs, campaignId: 'c-1', timeoutMs: 5000 });
    try {
      const now = (await slots.current())!;
      assert.equal(now.certificate.serial(), renewed.identity.certificate.serial());
      assert.notEqual(now.certificate.serial(), first.certificate.serial());
      assert.equal(now.certificate.subject(), first.certificate.subject());
      assert.ok(!now.certificate.publicKey.equals(first.certificate.publicKey), 'a new key');
      assert.deepEqual(confirms, [{ certificateId: now.certificate.serial(), clientId: `${THING}/${now.certificate.serial()}` }]);
      assert.deepEqual(renewed.retiring, ['old-1']);
      assert.equal(client.connected, false, 'the old connection is closed');
      assert.equal(await slots.nextState(), 'absent');
    } finally {
      await renewed.client.endAsync();
      await rm(work, { recursive: true, force: true });
    }
  });

  const failures: { mode: Mode; code: AgentError['code']; confirmed: number }[] = [
    { mode: 'reject-renew', code: 'rejected', confirmed: 0 },
    { mode: 'wrong-key', code: 'bad-response', confirmed: 0 },
    { mode: 'reject-confirm', code: 'rejected', confirmed: 1 },
  ];
  for (const f of failures) {
    it(`keeps the current identity and discards next when ${f.mode}`, async () => {
      mode = f.mode;
      const client = await connectAs(first);
      try {
        await assert.rejects(renewOverMqtt({ slots, thing: THING, client, connect: connectAs, timeoutMs: 5000 }), (e: AgentError) => e.code === f.code);
        assert.equal((await slots.current())!.certificate.serial(), first.certificate.serial());
        assert.equal(await slots.nextState(), 'absent');
        assert.equal(confirms.length, f.confirmed);
        assert.ok(client.connected, 'the current connection still works');
      } finally {
        await client.endAsync();
        await rm(work, { recursive: true, force: true });
      }
    });
  }

  it('keeps next when the confirm answer is lost, and the next attempt confirms and promotes that same certificate', async () => {
    mode = 'silent-confirm';
    const client = await connectAs(first);
    try {
      await assert.rejects(renewOverMqtt({ slots, thing: THING, client, connect: connectAs, timeoutMs: 800 }), (e: AgentError) => e.code === 'timeout');
      const kept = await slots.next();
      assert.ok(kept, 'next kept: the platform may already have retired the old certificate');
      assert.equal((await slots.current())!.certificate.serial(), first.certificate.serial());
      mode = 'ok';
      const renewed = await renewOverMqtt({ slots, thing: THING, client, connect: connectAs, timeoutMs: 5000 });
      assert.equal(renewed.identity.certificate.serial(), kept.certificate.serial(), 'no second certificate was asked for');
      assert.equal((await slots.current())!.certificate.serial(), kept.certificate.serial());
      // The second confirm names the kept certificate by its id (SHA-256 of the DER, as certfleet's ids).
      assert.deepEqual(confirms.map((c) => c.certificateId), [kept.certificate.serial(), kept.certificate.fingerprint()]);
      await renewed.client.endAsync();
    } finally {
      await client.endAsync().catch(() => {});
      await rm(work, { recursive: true, force: true });
    }
  });

  it('stores a trust bundle and acknowledges its version; refuses a malformed one', async () => {
    const client = await connectAs(first);
    try {
      const trust = await TrustStore.open(work);
      await trust.add(ca.cert.toPem());
      const next = makeRoot('CN=Next Root');
      const bundle = parseTrustBundle(Buffer.from(JSON.stringify({ version: 7, roots: [ca.cert.toPem(), next.cert.toPem()] })))!;
      const receipt = await applyTrustBundle(client, THING, trust, bundle, { timeoutMs: 5000 });
      assert.deepEqual(receipt.added, [next.cert.fingerprint()]);
      assert.equal((await TrustStore.open(work)).list().length, 2, 'durable');
      assert.deepEqual(acks.at(-1), { version: 7 });
      assert.equal(parseTrustBundle(Buffer.alloc(0)), undefined, 'an empty retained message clears');
      assert.throws(() => parseTrustBundle(Buffer.from('{"version":1,"roots":[]}')), (e: AgentError) => e.code === 'bad-response');
      assert.ok(Certificate.fromPem(bundle.roots[1]!));
    } finally {
      await client.endAsync();
      await rm(work, { recursive: true, force: true });
    }
  });
});
