import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { brokerMetrics } from './metrics.js';
import { keyPem } from './test-fixtures.js';
import { closeOf, Harness, metric, mosquitto, nextMessage, onPath, suback, waitFor } from './test-harness.js';

/* Transport, admission and bad input, against a real TLS broker. Policies: authorization.test.ts. */

let h: Harness;
before(async () => {
  h = await Harness.start({ limits: { handshakeTimeoutMs: 300, connectTimeoutMs: 300, maxPacketSize: 1024, maxSubscriptionsPerClient: 3 } });
});
after(() => h.close());

/** A TLS connection with dev-1's certificate that speaks raw bytes. */
async function rawDevice() {
  const socket = tlsConnect({ port: h.broker.port, host: 'localhost', ca: h.f.root.cert.toPem(), key: keyPem(h.f.dev1.key), cert: h.f.dev1.cert.toPem() });
  await once(socket, 'secureConnect');
  return socket;
}
/** An MQTT 3.1.1 CONNECT (§3.1): clean session, keep alive 30 s. */
function connectPacket(clientId: string): Buffer {
  const str = (s: string) => Buffer.concat([Buffer.from([0, Buffer.byteLength(s)]), Buffer.from(s)]);
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 30]), str(clientId)]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe('MQTT over mutual TLS', () => {
  it('admits a registered device, which subscribes, publishes and receives its own message', async () => {
    const c = await h.device('dev-1', h.f.dev1);
    const granted = await c.subscribeAsync('things/dev-1/#', { qos: 1 });
    assert.deepEqual(granted.map((g) => g.qos), [1]);
    const got = nextMessage(c);
    await c.publishAsync('things/dev-1/temp', '21.5', { qos: 1 });
    const [topic, payload] = await got;
    assert.equal(topic, 'things/dev-1/temp');
    assert.equal(payload.toString(), '21.5');
    assert.deepEqual(h.logged('device connected', { clientId: 'dev-1' })?.obj.certificateId, h.f.dev1.cert.fingerprint());
    await c.endAsync();
  });

  const refusals = [
    { name: 'an unknown certificate', leaf: () => h.f.unknown, reason: 'unknown-certificate' },
    { name: 'a certificate of a foreign CA', leaf: () => h.f.foreign, reason: 'untrusted-chain' },
    { name: 'a revoked certificate', leaf: () => h.f.revoked, reason: 'revoked-certificate' },
    { name: 'no certificate at all', leaf: () => undefined, reason: 'no-certificate' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} before MQTT, logs why and counts it`, async () => {
      const before = await metric(brokerMetrics.admissionsRefused, { reason: r.reason });
      const clientId = `refused-${r.reason}`;
      await assert.rejects(h.device(clientId, r.leaf()));
      await waitFor(`a ${r.reason} log`, () => h.logged('device refused', { reason: r.reason }) !== undefined);
      const entry = h.logged('device refused', { reason: r.reason })!;
      assert.equal(entry.level, 'warn');
      assert.match(String(entry.obj.remote), /:\d+$/);
      assert.ok(String(entry.obj.detail).length > 0);
      assert.ok(!h.logs.some((l) => l.obj.clientId === clientId), 'a refused connection never reaches MQTT');
      assert.equal(await metric(brokerMetrics.admissionsRefused, { reason: r.reason }), before + 1);
    });
  }

  it('close() ends admitted clients and connections still in the handshake, and is idempotent', async () => {
    const second = await Harness.start();
    const c = await second.device('dev-1', second.f.dev1);
    const raw = tcpConnect(second.broker.port, 'localhost'); // never starts TLS
    await once(raw, 'connect');
    const clientClosed = closeOf(c);
    const rawClosed = once(raw, 'close');
    await second.broker.close();
    await Promise.all([clientClosed, rawClosed]);
    await second.close();
  });
});

describe('bad input closes that client only', { timeout: 8000 }, () => {
  it('a TLS handshake that never comes is cut after handshakeTimeout', async () => {
    const raw = tcpConnect(h.broker.port, 'localhost');
    await once(raw, 'connect');
    const t0 = Date.now();
    await once(raw, 'close');
    assert.ok(Date.now() - t0 < 3000, 'closed by the handshake timeout, not by anything slower');
    await waitFor('the refusal log', () => h.logged('TLS handshake failed', { reason: 'handshake-timeout' }) !== undefined);
  });

  it('an admitted connection that sends no CONNECT is closed after connectTimeout', async () => {
    const socket = await rawDevice();
    await once(socket, 'close');
    await waitFor('the refusal', () => h.logged('device refused', { reason: 'connect-timeout' }) !== undefined);
  });

  it('a packet larger than maxPacketSize is refused from its header, without waiting for its body', async () => {
    const c = await h.device('dev-1', h.f.dev1);
    const closed = closeOf(c);
    c.publish('things/dev-1/big', Buffer.alloc(4096), { qos: 0 });
    await closed;
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'packet-too-large'));
    // The header alone announces a body that never comes: refused at once all the same.
    const socket = await rawDevice();
    socket.write(connectPacket('dev-1'));
    await once(socket, 'data'); // CONNACK
    socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])); // PUBLISH of 268,435,455 bytes
    await once(socket, 'close');
  });

  it('a malformed packet closes that connection and no other', async () => {
    const bystander = await h.device('dev-2', h.f.dev2);
    const socket = await rawDevice();
    socket.write(connectPacket('dev-1'));
    await once(socket, 'data'); // CONNACK
    socket.write(Buffer.from([0x82, 0x02, 0x00])); // SUBSCRIBE whose length runs past its bytes
    socket.write(Buffer.from([0xf0, 0x00])); // reserved packet type 15
    await once(socket, 'close');
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => ['malformed-packet', 'protocol-error'].includes(r.disconnectReason ?? '')));
    await bystander.publishAsync('things/dev-2/still', 'up');
    assert.ok(bystander.connected);
  });

  it('refuses subscriptions beyond the per-client limit with SUBACK 0x80', async () => {
    const c = await h.device('dev-2', h.f.dev2);
    assert.deepEqual(await suback(c, ['a/1', 'a/2', 'a/3', 'a/4']), [0, 0, 0, 128]);
    assert.deepEqual(await suback(c, 'a/1', 1), [1], 'subscribing again to a held filter takes no new place');
    await c.unsubscribeAsync('a/2');
    assert.deepEqual(await suback(c, 'a/4'), [0], 'an unsubscribe frees a place');
    assert.ok(h.logged('subscription refused', { reason: 'subscription-limit', topicFilter: 'a/4' }));
    await c.endAsync();
  });

  it('refuses a CONNECT of a protocol level other than 3, 4 and 5 as malformed', async () => {
    const before = await metric(brokerMetrics.admissionsRefused, { reason: 'malformed-packet' });
    const socket = await rawDevice();
    const level6 = connectPacket('dev-1');
    level6[8] = 6; // the Protocol Level byte (§3.1.2.2)
    socket.write(level6);
    await once(socket, 'close');
    await waitFor('the refusal', () => h.logged('device refused', { reason: 'malformed-packet' }) !== undefined);
    assert.equal(await metric(brokerMetrics.admissionsRefused, { reason: 'malformed-packet' }), before + 1);
  });
});

const mosquittoPub = onPath('mosquitto_pub');

describe('mosquitto_pub (a real client built on OpenSSL)', { skip: mosquittoPub ? false : 'mosquitto_pub is not installed' }, () => {
  it('publishes with an admitted certificate (exit 0) and the message is delivered', async () => {
    const watcher = await h.device('dev-2', h.f.dev2);
    await watcher.subscribeAsync('things/dev-1/x', { qos: 0 });
    const got = nextMessage(watcher);
    const r = await mosquitto(mosquittoPub!, h, h.f.dev1, ['-i', 'dev-1', '-t', 'things/dev-1/x', '-m', 'hi']);
    assert.equal(r.code, 0, r.out);
    assert.equal((await got)[1].toString(), 'hi');
    await watcher.endAsync();
  });

  it('fails with an unknown certificate (non-zero exit, not a timeout)', async () => {
    const r = await mosquitto(mosquittoPub!, h, h.f.unknown, ['-i', 'dev-1', '-t', 'things/dev-1/x', '-m', 'hi']);
    assert.equal(r.killed, false, 'mosquitto_pub should fail, not hang');
    assert.notEqual(r.code, 0, r.out);
  });

  it('publishes with -V mqttv5 (exit 0) and the message is delivered', async () => {
    const watcher = await h.device('dev-2', h.f.dev2);
    await watcher.subscribeAsync('things/dev-1/v5', { qos: 0 });
    const got = nextMessage(watcher);
    const r = await mosquitto(mosquittoPub!, h, h.f.dev1, ['-V', 'mqttv5', '-i', 'dev-1', '-q', '1', '-t', 'things/dev-1/v5', '-m', 'hi']);
    assert.equal(r.code, 0, r.out);
    assert.equal((await got)[1].toString(), 'hi');
    await watcher.endAsync();
  });

  it('with -V mqttv5 gets PUBACK 0x87 and the reason for a publish outside its policy, and sends DISCONNECT itself', async () => {
    const r = await mosquitto(mosquittoPub!, h, h.f.dev1, ['-V', 'mqttv5', '-d', '-i', 'dev-1', '-q', '1', '-t', 'things/dev-2/x', '-m', 'hi']);
    // mosquitto_pub 2.0 reports a refused publish as a warning and still exits 0.
    assert.match(r.out, /received PUBACK \(Mid: 1, RC:135\)/);
    assert.match(r.out, /Publish 1 failed: Not authorized/);
    assert.match(r.out, /not authorized \(policy\)/);
    assert.match(r.out, /sending DISCONNECT/, 'the connection was still up after the refusal');
  });
});
