import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  combineRequestHandlers,
  CREATE_FROM_CSR_TOPIC,
  filtersOverlap,
  thingOfTopic,
  thingRequestFilter,
  thingTopic,
  type DeviceRequest,
  type RequestHandler,
} from './requests.js';
import { closeOf, Harness, suback, waitFor } from './test-harness.js';

/*
 * `$certfleet/things/{thing}/` against a real TLS broker: a device's own
 * thing topics need no policy and another thing's cannot be granted by one
 * (docs/device-protocol.md); several request handlers side by side; retained
 * platform messages (MQTT 3.1.1 §3.3.1.3). dev-1 holds DEVICE_POLICY (no
 * `$certfleet/` grant at all); dev-2 holds OBSERVER_POLICY (`#` and `$certfleet/#`).
 */

const asked: DeviceRequest[] = [];
const provisioning: RequestHandler = {
  topics: [CREATE_FROM_CSR_TOPIC],
  handle: async () => ({ outcome: 'accepted', body: { from: 'provisioning' } }),
};
const renewal: RequestHandler = {
  topics: [thingRequestFilter('certificate/renew'), thingRequestFilter('certificate/confirm')],
  handle: async (req) => {
    asked.push(req);
    return { outcome: 'accepted', body: { from: 'renewal', thing: thingOfTopic(req.topic) } };
  },
};

let h: Harness;
before(async () => {
  h = await Harness.start({ requests: [provisioning, renewal] });
});
after(() => h.close());

describe('request handlers side by side', () => {
  it('tells overlapping topic filters apart (MQTT 3.1.1 §4.7)', () => {
    const cases: Array<[string, string, boolean]> = [
      ['$certfleet/things/+/certificate/renew', '$certfleet/things/a/certificate/renew', true],
      ['$certfleet/things/+/certificate/renew', '$certfleet/things/+/certificate/confirm', false],
      ['$certfleet/things/#', '$certfleet/things/a/trust-bundle/ack', true],
      ['$certfleet/certificates/create/json', '$certfleet/certificates/create-from-csr/json', false],
      ['a/b', 'a/b/c', false],
      ['a/+', 'a/b', true],
      ['a/+', 'a', false],
    ];
    for (const [a, b, want] of cases) {
      assert.equal(filtersOverlap(a, b), want, `${a} ~ ${b}`);
      assert.equal(filtersOverlap(b, a), want, `${b} ~ ${a}`);
    }
  });

  it('refuses handlers whose topics overlap', () => {
    const everything: RequestHandler = { topics: ['$certfleet/things/#'], handle: async () => ({ outcome: 'accepted', body: {} }) };
    assert.throws(() => combineRequestHandlers(renewal, everything), (e: Error & { code?: string }) => e.code === 'conflict');
  });

  it('routes each request to the handler whose topic it is', async () => {
    const dev = await h.device('dev-1', h.f.dev1);
    const topic = thingTopic('dev-1', 'certificate/renew');
    assert.deepEqual(await suback(dev, [`${topic}/accepted`]), [0]);
    const answer = new Promise<Buffer>((resolve) => dev.once('message', (_t, p) => resolve(p)));
    await dev.publishAsync(topic, '{}', { qos: 1 });
    assert.deepEqual(JSON.parse((await answer).toString()), { from: 'renewal', thing: 'dev-1' });
    assert.equal(asked.at(-1)?.identity.certificateId, h.f.dev1.cert.fingerprint());
    await dev.endAsync();
  });
});

describe("a device's own $certfleet/things/ topics", () => {
  it('may be subscribed to without a policy; no policy opens another thing\'s', async () => {
    const dev1 = await h.device('dev-1', h.f.dev1);
    assert.deepEqual(await suback(dev1, ['$certfleet/things/dev-1/#', '$certfleet/things/dev-2/#', '$certfleet/things/dev-2/certificate/renew-required']), [0, 128, 128]);
    const dev2 = await h.device('dev-2', h.f.dev2);
    // OBSERVER_POLICY allows $certfleet/#: still not dev-1's thing.
    assert.deepEqual(await suback(dev2, ['$certfleet/things/dev-1/#', '$certfleet/things/dev-2/#']), [128, 0]);
    await dev1.endAsync();
    await dev2.endAsync();
  });

  it("may publish its own request topics, never another thing's (the connection is closed)", async () => {
    const dev2 = await h.device('dev-2', h.f.dev2);
    const closed = closeOf(dev2);
    const before = asked.length;
    dev2.publish(thingTopic('dev-1', 'certificate/renew'), '{}', { qos: 1 });
    await closed;
    await sleep(50);
    assert.equal(asked.length, before, 'the forged request reached no handler');
    assert.ok(h.logged('publish refused', { clientId: 'dev-2', reason: 'other-thing' }));
  });

  it('may not publish under its own thing beyond the request topics (renew-required is the platform\'s)', async () => {
    const dev1 = await h.device('dev-1', h.f.dev1);
    const closed = closeOf(dev1);
    dev1.publish(thingTopic('dev-1', 'certificate/renew-required'), '{}', { qos: 1, retain: true });
    await closed;
    assert.ok(h.logged('publish refused', { clientId: 'dev-1', reason: 'reserved-topic' }));
  });
});

describe('retained platform messages', () => {
  it('keeps a retained message for a later subscriber, delivers it to its own thing only, and clears it with an empty payload', async () => {
    const topic = thingTopic('dev-1', 'certificate/renew-required');
    const observer = await h.device('dev-2', h.f.dev2);
    const observed: string[] = [];
    observer.on('message', (t) => observed.push(t));
    assert.deepEqual(await suback(observer, ['$certfleet/#']), [0]);
    await h.broker.publish(topic, JSON.stringify({ certificateId: 'c1' }), { retain: true });

    const dev = await h.device('dev-1', h.f.dev1);
    const got = new Promise<[string, Buffer, boolean]>((resolve) => dev.once('message', (t, p, packet) => resolve([t, p, packet.retain])));
    await dev.subscribeAsync(`$certfleet/things/dev-1/#`, { qos: 1 });
    const [t, p, retained] = await got;
    assert.equal(t, topic);
    assert.equal(retained, true);
    assert.deepEqual(JSON.parse(p.toString()), { certificateId: 'c1' });
    await dev.endAsync();

    await h.broker.publish(topic, '', { retain: true });
    const again = await h.device('dev-1', h.f.dev1);
    const later: string[] = [];
    again.on('message', (topic2) => later.push(topic2));
    await again.subscribeAsync(`$certfleet/things/dev-1/#`, { qos: 1 });
    await sleep(200);
    assert.deepEqual(later, [], 'the retained message was cleared');
    await waitFor('the observer to settle', () => true);
    assert.deepEqual(observed, [], "another thing's retained message never reaches the observer");
    await again.endAsync();
    await observer.endAsync();
  });
});
