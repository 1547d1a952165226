import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { CertfleetEvents } from '../events/index.js';
import { startBroker } from './broker.js';
import { brokerMetrics } from './metrics.js';
import { Harness, closeOf, collect, metric, waitFor } from './test-harness.js';

/* The broker follows the registry's events, records connections and counts them. */

let h: Harness;
const disconnects: Array<CertfleetEvents['thing.disconnected']> = [];
const connects: Array<CertfleetEvents['thing.connected']> = [];
before(async () => {
  h = await Harness.start();
  h.bus.on('thing.connected', (e) => void connects.push(e));
  h.bus.on('thing.disconnected', (e) => void disconnects.push(e));
});
after(() => h.close());

describe('revocation and CA changes', () => {
  it('disconnects a device within a second of certificate.status-changed to revoked, without publishing its will', async () => {
    const observer = await h.device('dev-2', h.f.dev2);
    const seen = collect(observer);
    await observer.subscribeAsync('things/#', { qos: 1 });
    const dev = await h.device('dev-1', h.f.dev1, { will: { topic: 'things/dev-1/status', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const closed = closeOf(dev);
    h.f.certificates.setStatus(h.f.dev1, 'revoked');
    try {
      const t0 = performance.now();
      h.bus.emit('certificate.status-changed', { certificateId: h.f.dev1.cert.fingerprint(), from: 'active', to: 'revoked' });
      await closed;
      const elapsed = performance.now() - t0;
      assert.ok(elapsed < 1000, `disconnected after ${elapsed.toFixed(1)} ms`);

      await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'certificate-revoked'));
      assert.ok(disconnects.some((e) => e.certificateId === h.f.dev1.cert.fingerprint() && e.reason === 'certificate-revoked' && e.thingName === 'dev-1'));
      await observer.publishAsync('things/sentinel', 'x', { qos: 1 });
      await waitFor('the sentinel', () => seen.includes('things/sentinel'));
      assert.deepEqual(seen, ['things/sentinel'], 'the will of a revoked device is not published');
      await assert.rejects(h.device('dev-1', h.f.dev1), 'and it cannot come back');
    } finally {
      h.f.certificates.setStatus(h.f.dev1, 'active');
      await observer.endAsync();
    }
  });

  it('disconnectCertificate() closes every connection of the certificate and says how many', async () => {
    const a = await h.device('dev-1', h.f.dev1);
    const closed = closeOf(a);
    assert.equal(h.broker.disconnectCertificate(h.f.dev1.cert.fingerprint(), 'operator-request'), 1);
    await closed;
    assert.equal(h.broker.disconnectCertificate(h.f.dev1.cert.fingerprint(), 'operator-request'), 0);
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'operator-request'));
  });

  for (const ca of [{ id: 'issuing', status: 'inactive' }, { id: 'root', status: 'revoked' }] as const) {
    it(`disconnects the devices below a CA set ${ca.status} (${ca.id}), and admits none until it is active again`, async () => {
      const devices = [await h.device('dev-1', h.f.dev1), await h.device('dev-2', h.f.dev2)];
      const closed = Promise.all(devices.map(closeOf));
      h.f.cas.setStatus(ca.id, ca.status);
      try {
        h.bus.emit('ca.status-changed', { caId: ca.id, to: ca.status });
        await closed;
        await assert.rejects(h.device('dev-1', h.f.dev1), 'the admission cache was dropped: refused at once');
        await waitFor('the records', () => [h.f.dev1, h.f.dev2].every((d) => h.records.byCertificate(d).some((r) => r.disconnectReason === `ca-${ca.status}`)));
      } finally {
        h.f.cas.setStatus(ca.id, 'active');
        h.bus.emit('ca.status-changed', { caId: ca.id, to: 'active' });
      }
      (await h.device('dev-1', h.f.dev1)).end();
    });
  }
});

describe('connection records, events and metrics', () => {
  it('records each session open, then closed with its reason, and tells the bus', async () => {
    const dev = await h.device('dev-1', h.f.dev1);
    await waitFor('the open record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectedAt === null));
    const open = h.records.byCertificate(h.f.dev1).find((r) => r.disconnectedAt === null)!;
    assert.deepEqual([open.clientId, open.nodeId], ['dev-1', 'test-node']);
    assert.match(open.remoteAddress, /127\.0\.0\.1:\d+$/);
    assert.deepEqual(connects.at(-1), { thingName: 'dev-1', certificateId: h.f.dev1.cert.fingerprint(), clientId: 'dev-1', remote: open.remoteAddress });
    await dev.endAsync();
    await waitFor('the close', () => h.records.rows.get(open.id)?.disconnectReason === 'client-disconnect');
  });

  it('records a takeover of the client id [MQTT-3.1.4-2]', async () => {
    const first = await h.device('dev-2', h.f.dev2);
    const closed = closeOf(first);
    const second = await h.device('dev-2', h.f.dev2);
    await closed;
    await waitFor('the record', () => h.records.byCertificate(h.f.dev2).some((r) => r.disconnectReason === 'client-id-takeover'));
    await second.endAsync();
  });

  it('moves the connection gauge and the message counters', async () => {
    const [conns, msgsIn, msgsOut] = await Promise.all([metric(brokerMetrics.connections), metric(brokerMetrics.messagesIn), metric(brokerMetrics.messagesOut)]);
    const dev = await h.device('dev-1', h.f.dev1);
    await waitFor('the gauge', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectedAt === null));
    assert.equal(await metric(brokerMetrics.connections), conns + 1);
    const got = collect(dev);
    await dev.subscribeAsync('things/dev-1/#', { qos: 1 });
    await dev.publishAsync('things/dev-1/x', 'x', { qos: 1 });
    await waitFor('the message', () => got.length === 1);
    assert.equal(await metric(brokerMetrics.messagesIn), msgsIn + 1);
    assert.equal(await metric(brokerMetrics.messagesOut), msgsOut + 1);
    await dev.endAsync();
    await waitFor('the gauge back', () => h.records.byCertificate(h.f.dev1).every((r) => r.disconnectedAt !== null));
    assert.equal(await metric(brokerMetrics.connections), conns);
  });

  it('closes the rows an earlier run of the same node left open, and loses none on a clean shutdown', async () => {
    const other = new Harness();
    other.records.delayMs = 30; // a slow database: close() must still wait for every write
    await other.records.recordConnect({
      id: 'left-open', certificateId: 'x', clientId: 'x', remoteAddress: 'x', connectedAt: new Date(0), nodeId: 'test-node',
    });
    other.broker = await startBroker(other.options());
    assert.equal(other.records.rows.get('left-open')?.disconnectReason, 'node-restart');
    const devices = [await other.device('dev-1', other.f.dev1), await other.device('dev-2', other.f.dev2)];
    await other.broker.close();
    const rows = [...other.records.rows.values()].filter((r) => r.id !== 'left-open');
    assert.equal(rows.length, devices.length);
    assert.deepEqual(rows.map((r) => r.disconnectReason), ['server-shutdown', 'server-shutdown']);
    await other.close();
  });
});
