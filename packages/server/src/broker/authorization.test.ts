import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { reservedTopicRefusal } from './authorization.js';
import { brokerMetrics } from './metrics.js';
import { DEVICE_POLICY, Harness, closeOf, collect, metric, mosquitto, nextMessage, onPath, suback, waitFor } from './test-harness.js';

/*
 * Policies decide every connect, publish, subscribe and receive, against a
 * real TLS broker. dev-1 holds DEVICE_POLICY (its own topics by
 * ${thing.name}, its site by ${thing.attr.site}, shared/# except
 * shared/secret); dev-2 holds OBSERVER_POLICY (everything).
 */

let h: Harness;
before(async () => {
  h = await Harness.start();
});
after(() => h.close());

/** Publishes from the observer, then a sentinel, and returns once the sentinel is back: whatever else was to arrive has. */
async function settle(observer: Awaited<ReturnType<Harness['device']>>, seen: string[]): Promise<void> {
  await observer.publishAsync('sentinel/done', 'x', { qos: 1 });
  await waitFor('the sentinel', () => seen.includes('sentinel/done'));
}

describe('policy authorisation', () => {
  it('lets a device publish and subscribe within its policy (${thing.name}, ${thing.attr.site})', async () => {
    const observer = await h.device('dev-2', h.f.dev2);
    const seen = collect(observer);
    await observer.subscribeAsync(['#'], { qos: 1 });
    const dev = await h.device('dev-1', h.f.dev1);
    assert.deepEqual(await suback(dev, ['things/dev-1/#', 'things/dev-1/cmd/+', 'shared/#'], 1), [1, 1, 1]);
    const own = nextMessage(dev);
    await dev.publishAsync('things/dev-1/temp', '21', { qos: 1 });
    assert.deepEqual((await own)[0], 'things/dev-1/temp');
    await dev.publishAsync('sites/paris/telemetry', 'ok', { qos: 1 });
    await settle(observer, seen);
    assert.deepEqual(seen, ['things/dev-1/temp', 'sites/paris/telemetry', 'sentinel/done']);
    await dev.endAsync();
    await observer.endAsync();
  });

  it('never delivers a publish outside the policy, and closes that connection (MQTT 3.1.1 has no negative PUBACK)', async () => {
    const before = await metric(brokerMetrics.publishDenied, { reason: 'policy' });
    const observer = await h.device('dev-2', h.f.dev2);
    const seen = collect(observer);
    await observer.subscribeAsync('#', { qos: 1 });
    const dev = await h.device('dev-1', h.f.dev1);
    const closed = closeOf(dev);
    dev.publish('things/dev-2/cmd', 'forged', { qos: 1 });
    await closed;
    await settle(observer, seen);
    assert.deepEqual(seen, ['sentinel/done']);
    assert.equal(await metric(brokerMetrics.publishDenied, { reason: 'policy' }), before + 1);
    const refused = h.logged('publish refused', { clientId: 'dev-1', topic: 'things/dev-2/cmd' });
    assert.match(String(refused?.obj.detail), /no statement of device allows it/);
    await waitFor('the record', () => h.records.byCertificate(h.f.dev1).some((r) => r.disconnectReason === 'publish-denied'));
    await observer.endAsync();
  });

  it('answers SUBACK 0x80 for each filter outside the policy and keeps the connection', async () => {
    const before = await metric(brokerMetrics.subscribeDenied, { reason: 'policy' });
    const dev = await h.device('dev-1', h.f.dev1);
    // `#` and things/+/cmd reach other things' topics; shared/secret is receive-denied, not subscribe-denied.
    assert.deepEqual(await suback(dev, ['things/dev-2/#', '#', 'things/+/cmd', 'things/dev-1/a', 'shared/secret']), [128, 128, 128, 0, 0]);
    assert.equal(await metric(brokerMetrics.subscribeDenied, { reason: 'policy' }), before + 3);
    await dev.publishAsync('things/dev-1/a', 'still connected', { qos: 1 });
    await dev.endAsync();
  });

  it('drops a message the policy denies receiving, for that client only', async () => {
    const before = await metric(brokerMetrics.receiveDenied, { reason: 'policy' });
    const observer = await h.device('dev-2', h.f.dev2);
    const dev = await h.device('dev-1', h.f.dev1);
    const observed = collect(observer);
    const received = collect(dev);
    await observer.subscribeAsync('shared/#', { qos: 1 });
    await dev.subscribeAsync('shared/#', { qos: 1 });
    for (const t of ['shared/secret', 'shared/open']) await observer.publishAsync(t, 'x', { qos: 1 });
    await waitFor('both messages at the observer', () => observed.length === 2);
    await waitFor('the open one at the device', () => received.length === 1);
    assert.deepEqual(received, ['shared/open']);
    assert.deepEqual(observed, ['shared/secret', 'shared/open']);
    assert.equal(await metric(brokerMetrics.receiveDenied, { reason: 'policy' }), before + 1);
    await Promise.all([dev.endAsync(), observer.endAsync()]);
  });

  it('refuses CONNECT with a client id the policy does not allow: CONNACK 5 "not authorized"', async () => {
    const before = await metric(brokerMetrics.admissionsRefused, { reason: 'connect-denied' });
    await assert.rejects(h.device('not-dev-1', h.f.dev1), (err: Error & { code?: number }) => {
      assert.match(err.message, /Not authorized/);
      assert.equal(err.code, 5);
      return true;
    });
    assert.equal(await metric(brokerMetrics.admissionsRefused, { reason: 'connect-denied' }), before + 1);
    const entry = h.logged('device refused', { reason: 'connect-denied', clientId: 'not-dev-1' });
    assert.equal(entry?.obj.certificateId, h.f.dev1.cert.fingerprint());
  });

  it('guards the reserved topics in front of any policy: no $certfleet/ publish, no $SYS/ subscription', async () => {
    const watcher = await h.device('dev-1', h.f.dev1);
    await watcher.subscribeAsync('shared/#', { qos: 1 });
    // The observer's policy allows publish and subscribe on $certfleet/# and #.
    const observer = await h.device('dev-2', h.f.dev2);
    assert.deepEqual(await suback(observer, ['$certfleet/#', '$SYS/#']), [0, 128]);
    const closed = closeOf(observer);
    observer.publish('$certfleet/certificates/create/json', '{}', { qos: 1 });
    await closed;
    assert.ok(h.logged('publish refused', { reason: 'reserved-topic', clientId: 'dev-2' }));
    await watcher.endAsync();
  });

  it('reloads the policies after policy.changed before the next decision', async () => {
    const dev = await h.device('dev-1', h.f.dev1);
    await dev.publishAsync('things/dev-1/a', 'allowed', { qos: 1 });
    const reads = h.policies.reads;
    // The same policy, without the publish on its own topics.
    h.policies.attach(h.f.dev1, 'device', { statements: DEVICE_POLICY.statements.filter((s) => !s.resources.includes('things/${thing.name}/#')) });
    h.bus.emit('policy.changed', { policyName: 'device' });
    const closed = closeOf(dev);
    dev.publish('things/dev-1/a', 'now denied', { qos: 1 });
    await closed;
    assert.equal(h.policies.reads, reads + 1, 'one reload, not one per check');
    h.policies.attach(h.f.dev1, 'device', DEVICE_POLICY);
    h.bus.emit('policy.changed', { policyName: 'device' });
  });

  it('reloads the thing after thing.changed (${thing.attr.site} follows the new value)', async () => {
    const dev = await h.device('dev-1', h.f.dev1);
    h.things.set('dev-1', { site: 'lyon' });
    h.bus.emit('thing.changed', { thingName: 'dev-1' });
    await dev.publishAsync('sites/lyon/telemetry', 'ok', { qos: 1 });
    const closed = closeOf(dev);
    dev.publish('sites/paris/telemetry', 'no longer', { qos: 1 });
    await closed;
    h.things.set('dev-1', { site: 'paris' });
  });

  it('answers CONNACK 3 "server unavailable" when the policies cannot be read, and allows nothing', async () => {
    h.policies.failWith = new Error('database is locked');
    // What earlier connections of dev-1 read is kept until the registry changes: a change makes this connect read.
    h.bus.emit('policy.changed', { policyName: 'device' });
    try {
      await assert.rejects(h.device('dev-1', h.f.dev1), (err: Error & { code?: number }) => err.code === 3);
      assert.ok(h.logged('device refused', { reason: 'policy-unavailable' }));
    } finally {
      h.policies.failWith = undefined;
    }
  });
});

describe('reserved-topic guard', () => {
  const cases = [
    { topic: 'things/dev-1/temp', refused: false },
    { topic: '$certfleet/certificates/create/json', refused: true },
    { topic: '$SYS/broker/heartbeat', refused: true },
    { topic: 'certfleet/x', refused: false },
  ];
  for (const c of cases) {
    it(`${c.refused ? 'refuses' : 'leaves to the policy'} a publish to ${c.topic}`, () => {
      assert.equal(reservedTopicRefusal(c.topic)?.allowed ?? true, !c.refused);
    });
  }
  it('lets through a $certfleet/ request topic on the allow-list, and nothing else', () => {
    const list = ['$certfleet/certificates/create-from-csr/json'];
    assert.equal(reservedTopicRefusal('$certfleet/certificates/create-from-csr/json', list), undefined);
    assert.equal(reservedTopicRefusal('$certfleet/certificates/create-from-csr/json/accepted', list)?.allowed, false);
    assert.equal(reservedTopicRefusal('$SYS/x', ['$SYS/#'])?.allowed, false, '$SYS/ never');
  });
});

const pub = onPath('mosquitto_pub');
const sub = onPath('mosquitto_sub');

describe('mosquitto clients against policies', { skip: pub && sub ? false : 'mosquitto clients are not installed' }, () => {
  it('mosquitto_pub with a client id outside the policy is refused as not authorised', async () => {
    const r = await mosquitto(pub!, h, h.f.dev1, ['-i', 'someone-else', '-t', 'things/dev-1/x', '-m', 'hi']);
    assert.equal(r.killed, false);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /not authori[sz]ed/i);
  });

  it('mosquitto_sub within the policy receives; outside it is told the subscription was denied', async () => {
    const within = mosquitto(sub!, h, h.f.dev1, ['-i', 'dev-1', '-t', 'things/dev-1/cmd', '-C', '1', '-W', '10']);
    const observer = await h.device('dev-2', h.f.dev2);
    await waitFor('dev-1 subscribed', () => h.logs.some((l) => l.msg === 'device connected' && l.obj.clientId === 'dev-1'));
    // Publish until mosquitto_sub has its subscription and gets one (QoS 0 before the SUBACK is lost).
    let done = false;
    void within.finally(() => (done = true));
    while (!done) {
      await observer.publishAsync('things/dev-1/cmd', 'reboot', { qos: 0 });
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await within;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /reboot/);
    await observer.endAsync();

    const outside = await mosquitto(sub!, h, h.f.dev1, ['-i', 'dev-1', '-t', 'things/dev-2/#', '-W', '3']);
    assert.match(outside.out, /denied/i, outside.out);
  });
});
