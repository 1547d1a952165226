import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { connect, type IClientOptions, type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import type { TestCa } from '../../../pki/src/testing/hierarchy.js';
import { wireSize } from './aedes-internals.js';
import { brokerMetrics } from './metrics.js';
import { ReasonCode } from './reason-codes.js';
import { keyPem } from './test-fixtures.js';
import { closeOf, collect, Harness, metric, nextMessage, suback, waitFor } from './test-harness.js';

/* MQTT 5 on the device endpoint, with MQTT.js speaking protocol level 5: reason codes instead of dropped connections. */

const LIMITS = { maxPacketSize: 1024, maxSubscriptionsPerClient: 3 };
let h: Harness;
const opened: MqttClient[] = [];
before(async () => {
  h = await Harness.start({ limits: LIMITS });
});
after(async () => {
  for (const c of opened) c.end(true);
  await h.close();
});

/** An MQTT 5 device, with the CONNACK it got. */
async function v5(clientId: string, leaf: TestCa, extra: Partial<IClientOptions> = {}, on = h): Promise<{ c: MqttClient; connack: IConnackPacket }> {
  const c = connect(`mqtts://localhost:${on.broker.port}`, {
    clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000,
    ca: on.f.root.cert.toPem(), key: keyPem(leaf.key), cert: leaf.cert.toPem(), ...extra,
  });
  opened.push(c);
  // MqttClient's typed emitter does not fit events.once().
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return { c, connack };
}

/** Publishes and resolves with the acknowledgement's reason code and properties (QoS 1 PUBACK, QoS 2 PUBREC or PUBCOMP). */
function ack(c: MqttClient, topic: string, qos: 1 | 2): Promise<{ code: number; reasonString?: string }> {
  return new Promise((resolve) => {
    c.publish(topic, 'x', { qos }, (err, packet?: Packet) => {
      const p = packet as { reasonCode?: number; properties?: { reasonString?: string } } | undefined;
      resolve({ code: p?.reasonCode ?? (err as { code?: number } | undefined)?.code ?? 0, reasonString: p?.properties?.reasonString });
    });
  });
}

const disconnectOf = (c: MqttClient) => new Promise<IDisconnectPacket>((resolve) => c.once('disconnect', resolve));

describe('MQTT 5 sessions', () => {
  it('admits an MQTT 5 device that subscribes, publishes and receives, and advertises the packet limit in CONNACK', async () => {
    const { c, connack } = await v5('dev-1', h.f.dev1);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.maximumPacketSize, wireSize(LIMITS.maxPacketSize));
    assert.deepEqual(await suback(c, 'things/dev-1/#', 1), [1]);
    const got = nextMessage(c);
    assert.deepEqual(await ack(c, 'things/dev-1/temp', 1), { code: 0, reasonString: undefined });
    assert.equal((await got)[0], 'things/dev-1/temp');
    await c.endAsync();
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'client-disconnect'));
  });

  it('answers a QoS 1 or 2 publish outside the policy with 0x87, delivers it to no one and keeps the connection', async () => {
    const observer = await h.device('dev-2', h.f.dev2);
    await observer.subscribeAsync('#', { qos: 1 });
    const seen = collect(observer);
    const before = await metric(brokerMetrics.publishDenied, { reason: 'policy' });
    const ended = () => h.records.byCertificate(h.f.dev1).filter((r) => r.disconnectReason === 'client-disconnect').length;
    const endedBefore = ended();
    const { c } = await v5('dev-1', h.f.dev1);

    assert.deepEqual(await ack(c, 'things/dev-2/temp', 1), { code: ReasonCode.NOT_AUTHORIZED, reasonString: 'not authorized (policy)' });
    assert.deepEqual(await ack(c, 'things/dev-2/temp', 2), { code: ReasonCode.NOT_AUTHORIZED, reasonString: 'not authorized (policy)' });
    assert.deepEqual(await ack(c, '$certfleet/anything', 1), { code: ReasonCode.NOT_AUTHORIZED, reasonString: 'not authorized (reserved-topic)' });
    c.publish('things/dev-2/qos0', 'x', { qos: 0 }); // no acknowledgement to carry a reason: dropped
    assert.deepEqual(await ack(c, 'things/dev-1/after', 1), { code: 0, reasonString: undefined }, 'the connection is still up and usable');
    await waitFor('the allowed message', () => seen.includes('things/dev-1/after'));
    await sleep(100);
    assert.deepEqual(seen, ['things/dev-1/after'], 'no refused message was delivered');
    assert.ok(c.connected);
    assert.equal(await metric(brokerMetrics.publishDenied, { reason: 'policy' }), before + 3);
    assert.ok(h.logged('publish refused', { clientId: 'dev-1', topic: 'things/dev-2/temp', reason: 'policy', mqtt: 5 }));

    // The refusals did not become the session's end: it ends as the client ended it.
    await c.endAsync();
    await waitFor('the record', () => ended() === endedBefore + 1);
    assert.ok(!h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'publish-denied'), JSON.stringify(h.records.byCertificate(h.f.dev1)));
    await observer.endAsync();
  });

  it('answers a refused subscription with SUBACK 0x87, the per-client limit included', async () => {
    const { c } = await v5('dev-1', h.f.dev1);
    assert.deepEqual(await suback(c, ['things/dev-1/a', 'things/dev-2/#', '$SYS/#']), [0, ReasonCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED]);
    assert.deepEqual(await suback(c, ['things/dev-1/b', 'shared/x', 'things/dev-1/c']), [0, 0, ReasonCode.NOT_AUTHORIZED]);
    assert.ok(h.logged('subscription refused', { clientId: 'dev-1', topicFilter: 'things/dev-1/c', reason: 'subscription-limit' }));
    assert.ok(c.connected);
    await c.endAsync();
  });

  it('refuses a client id the policy does not allow with CONNACK 0x87', async () => {
    await assert.rejects(v5('someone-else', h.f.dev1), (err: Error & { code?: number }) => err.code === ReasonCode.NOT_AUTHORIZED);
    await waitFor('the refusal', () => h.logged('device refused', { reason: 'connect-denied', clientId: 'someone-else' }) !== undefined);
  });

  it('tells a revoked device why with DISCONNECT 0x87 within a second, and does not publish its will', async () => {
    const observer = await h.device('dev-2', h.f.dev2);
    await observer.subscribeAsync('things/#', { qos: 1 });
    const seen = collect(observer);
    const { c } = await v5('dev-1', h.f.dev1, { will: { topic: 'things/dev-1/status', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const told = disconnectOf(c);
    const closed = closeOf(c);
    h.f.certificates.setStatus(h.f.dev1, 'revoked');
    try {
      const t0 = performance.now();
      h.bus.emit('certificate.status-changed', { certificateId: h.f.dev1.cert.fingerprint(), from: 'active', to: 'revoked' });
      const packet = await told;
      await closed;
      const elapsed = performance.now() - t0;
      assert.ok(elapsed < 1000, `disconnected after ${elapsed.toFixed(1)} ms`);
      assert.equal(packet.reasonCode, ReasonCode.NOT_AUTHORIZED);
      assert.equal(packet.properties?.reasonString, 'certificate-revoked');
      await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'certificate-revoked'));
      await observer.publishAsync('things/sentinel', 'x', { qos: 1 });
      await waitFor('the sentinel', () => seen.includes('things/sentinel'));
      assert.deepEqual(seen, ['things/sentinel'], 'the will of a revoked device is not published');
      await assert.rejects(v5('dev-1', h.f.dev1), 'and it cannot come back');
    } finally {
      h.f.certificates.setStatus(h.f.dev1, 'active');
      await observer.endAsync();
    }
  });

  it('says 0x98 (administrative action) for an operator disconnect and 0x8E to a session taken over', async () => {
    const { c } = await v5('dev-1', h.f.dev1);
    const told = disconnectOf(c);
    assert.equal(h.broker.disconnectCertificate(h.f.dev1.cert.fingerprint(), 'operator-request'), 1);
    const packet = await told;
    assert.equal(packet.reasonCode, ReasonCode.ADMINISTRATIVE_ACTION);
    assert.equal(packet.properties?.reasonString, 'operator-request');

    const first = (await v5('dev-2', h.f.dev2)).c;
    const takenOver = disconnectOf(first);
    const second = (await v5('dev-2', h.f.dev2)).c;
    assert.equal((await takenOver).reasonCode, ReasonCode.SESSION_TAKEN_OVER);
    await waitFor('the record', () => h.records.byCertificate(h.f.dev2).some((r) => r.disconnectReason === 'client-id-takeover'));
    assert.ok(second.connected);
    await second.endAsync();
  });

  it('ends a session with DISCONNECT 0x95 for a packet larger than maxPacketSize, and no other', async () => {
    const bystander = (await v5('dev-2', h.f.dev2)).c;
    const { c } = await v5('dev-1', h.f.dev1);
    const told = disconnectOf(c);
    c.publish('things/dev-1/big', Buffer.alloc(4096), { qos: 0 });
    assert.equal((await told).reasonCode, ReasonCode.PACKET_TOO_LARGE);
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'packet-too-large'));
    await bystander.publishAsync('things/dev-2/still', 'up', { qos: 1 });
    assert.ok(bystander.connected);
    await bystander.endAsync();
  });

  it('tells MQTT 5 sessions the server is shutting down (0x8B)', async () => {
    const second = await Harness.start();
    const { c } = await v5('dev-1', second.f.dev1, {}, second);
    const told = disconnectOf(c);
    await second.broker.close();
    const packet = await told;
    assert.equal(packet.reasonCode, ReasonCode.SERVER_SHUTTING_DOWN);
    await second.close();
  });

  it('passes a v5 publisher\'s properties on to an MQTT 5 subscriber, and the message to a 3.1.1 one without them', async () => {
    const { c } = await v5('dev-1', h.f.dev1);
    const properties = { contentType: 'application/json', userProperties: { unit: 'C' } };
    const sub5 = (await v5('dev-2', h.f.dev2)).c;
    await sub5.subscribeAsync('things/dev-1/props', { qos: 1 });
    const got5 = new Promise<IPublishPacket>((resolve) => sub5.once('message', (_t, _p, packet) => resolve(packet)));
    await c.publishAsync('things/dev-1/props', '{"t":1}', { qos: 1, properties });
    const p5 = await got5;
    assert.equal(p5.properties?.contentType, 'application/json');
    assert.deepEqual({ ...p5.properties?.userProperties }, { unit: 'C' });
    await sub5.endAsync();

    const sub4 = await h.device('dev-2', h.f.dev2);
    await sub4.subscribeAsync('things/dev-1/props', { qos: 1 });
    const got4 = nextMessage(sub4);
    await c.publishAsync('things/dev-1/props', '{"t":2}', { qos: 1, properties });
    assert.equal((await got4)[1].toString(), '{"t":2}');
    await Promise.all([c.endAsync(), sub4.endAsync()]);
  });
});
