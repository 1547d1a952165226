import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt';
import type { ClaimRecord, ClaimStore } from '../store/index.js';
import { startBroker } from './broker.js';
import { CREATE_FROM_CSR_TOPIC, provisionTopic, type DeviceRequest, type RequestHandler } from './requests.js';
import { closeOf, collect, Harness, suback, waitFor } from './test-harness.js';

/* Request topics against a real TLS broker: routing to the handler, answers to the asker only, claim rules. */

class FakeClaims implements ClaimStore {
  readonly rows = new Map<string, ClaimRecord>();
  async getClaim(id: string): Promise<ClaimRecord | undefined> {
    return this.rows.get(id);
  }
}

const seen: DeviceRequest[] = [];
let failNext = false;
const handler: RequestHandler = {
  topics: [CREATE_FROM_CSR_TOPIC, '$certfleet/provisioning-templates/+/provision/json'],
  async handle(req) {
    seen.push(req);
    if (failNext) {
      failNext = false;
      throw new Error('boom');
    }
    return { outcome: 'accepted', body: { for: req.clientId, secret: `token-of-${req.clientId}` } };
  },
};

let h: Harness;
before(async () => {
  h = new Harness();
  const claims = new FakeClaims();
  // The fleet's unregistered device certificate becomes a claim credential for template "tpl".
  h.f.certificates.add(h.f.unknown, 'issuing', null);
  claims.rows.set(h.f.unknown.cert.fingerprint(), { certificateId: h.f.unknown.cert.fingerprint(), template: 'tpl', createdAt: new Date() });
  h.broker = await startBroker(h.options({ requests: handler, policies: { policies: h.policies, things: h.things, certificates: h.f.certificates, claims } }));
});
after(() => h.close());

const accepted = `${CREATE_FROM_CSR_TOPIC}/accepted`;

describe('device requests on $certfleet/ topics', () => {
  it('routes a claim request to the handler and answers that client alone; nobody else sees request or answer', async () => {
    // dev-2's policy lets it subscribe to and receive everything under $certfleet/.
    const observer = await h.device('dev-2', h.f.dev2);
    assert.deepEqual(await suback(observer, ['$certfleet/#']), [0]);
    const observed = collect(observer);
    const a = await h.device('claim-a', h.f.unknown);
    const b = await h.device('claim-b', h.f.unknown);
    assert.deepEqual(await suback(a, [accepted, `${CREATE_FROM_CSR_TOPIC}/rejected`], 1), [1, 1]);
    assert.deepEqual(await suback(b, [accepted]), [0]);
    const toA: string[] = [];
    const toB: string[] = [];
    a.on('message', (t, p) => toA.push(`${t} ${p.toString()}`));
    b.on('message', (t, p) => toB.push(`${t} ${p.toString()}`));

    await a.publishAsync(CREATE_FROM_CSR_TOPIC, JSON.stringify({ certificateSigningRequest: 'x' }), { qos: 1, retain: true });
    await waitFor('the answer', () => toA.length === 1);
    await sleep(200);
    assert.deepEqual(toA, [`${accepted} {"for":"claim-a","secret":"token-of-claim-a"}`]);
    assert.deepEqual(toB, [], 'another claim client subscribed to the same answer topic');
    assert.deepEqual(observed, [], 'an observer allowed to receive $certfleet/#');
    const req = seen.at(-1)!;
    assert.equal(req.clientId, 'claim-a');
    assert.equal(req.identity.certificateId, h.f.unknown.cert.fingerprint());
    assert.equal(JSON.parse(req.payload.toString()).certificateSigningRequest, 'x');

    // The retain flag was dropped: a later subscriber finds nothing stored.
    await observer.endAsync();
    const late = await h.device('dev-2', h.f.dev2);
    const lateSeen = collect(late);
    await late.subscribeAsync('$certfleet/#', { qos: 0 });
    await sleep(200);
    assert.deepEqual(lateSeen, []);
    await Promise.all([a.endAsync(), b.endAsync(), late.endAsync()]);
  });

  it('answers an MQTT 5 request as a valid MQTT 5 PUBLISH to the asker alone, with its Correlation Data', async () => {
    const observer = await h.device('dev-2', h.f.dev2, { protocolVersion: 5 });
    assert.deepEqual(await suback(observer, ['$certfleet/#']), [0]);
    const observed = collect(observer);
    const a = await h.device('claim-v5', h.f.unknown, { protocolVersion: 5 });
    assert.deepEqual(await suback(a, [accepted], 1), [1]);
    const answer = new Promise<IPublishPacket>((resolve) => a.once('message', (_t, _p, packet) => resolve(packet)));
    const correlationData = Buffer.from('req-42');
    await a.publishAsync(CREATE_FROM_CSR_TOPIC, '{}', { qos: 1, properties: { correlationData } });
    const got = await answer;
    assert.equal(got.topic, accepted);
    assert.deepEqual(JSON.parse(got.payload.toString()), { for: 'claim-v5', secret: 'token-of-claim-v5' });
    assert.deepEqual(got.properties?.correlationData, correlationData);
    await sleep(200);
    assert.deepEqual(observed, [], 'an MQTT 5 observer allowed to receive $certfleet/#');
    await Promise.all([a.endAsync(), observer.endAsync()]);
  });

  it('answers 500 InternalError when the handler fails', async () => {
    const c = await h.device('claim-fail', h.f.unknown);
    const got = collect(c);
    const payloads: string[] = [];
    c.on('message', (_t, p) => payloads.push(p.toString()));
    failNext = true;
    await c.publishAsync(provisionTopic('tpl'), '{}', { qos: 1 });
    await waitFor('the rejection', () => got.length === 1);
    assert.equal(got[0], `${provisionTopic('tpl')}/rejected`);
    assert.deepEqual(JSON.parse(payloads[0]!), { statusCode: 500, errorCode: 'InternalError', errorMessage: 'internal error' });
    assert.ok(h.logged('request handler failed', { clientId: 'claim-fail' }));
    await c.endAsync();
  });

  it('holds a claim certificate to its own request and answer topics, whatever policies say', async () => {
    const c = await h.device('claim-sub', h.f.unknown);
    const answers = ['accepted', 'rejected', '+'].map((a) => `${provisionTopic('tpl')}/${a}`);
    assert.deepEqual(await suback(c, [...answers, `${provisionTopic('other')}/accepted`, '$certfleet/#', 'things/#', '#']), [0, 0, 0, 128, 128, 128, 128]);
    const closed = closeOf(c);
    c.publish(provisionTopic('other'), '{}', { qos: 1 });
    await closed;
    assert.ok(h.logged('publish refused', { clientId: 'claim-sub', reason: 'claim' }));

    const d = await h.device('claim-pub', h.f.unknown);
    const closedToo = closeOf(d);
    d.publish('things/claim-pub/telemetry', '{}', { qos: 1 });
    await closedToo;
    assert.ok(h.logged('publish refused', { clientId: 'claim-pub', reason: 'claim' }));
  });

  it('leaves a device that is not a claim to its policies: dev-1 may not publish requests', async () => {
    const dev = await h.device('dev-1', h.f.dev1);
    const closed = closeOf(dev);
    dev.publish(CREATE_FROM_CSR_TOPIC, '{}', { qos: 1 });
    await closed;
    assert.ok(h.logged('publish refused', { clientId: 'dev-1', reason: 'policy' }));
  });
});
