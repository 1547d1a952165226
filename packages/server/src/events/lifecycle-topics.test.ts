import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CertfleetEventName, CertfleetEvents } from './bus.js';
import { EventBus } from './bus.js';
import type { EventEnvelope } from './envelope.js';
import { lifecycleTopic, publishLifecycleEvents } from './lifecycle-topics.js';

const ID = 'ab'.repeat(32);
const device = { thingName: 'pump-7', certificateId: ID, clientId: 'pump-7', remote: '192.0.2.1:5000' };

describe('lifecycle topics', () => {
  const cases: Array<{ [K in CertfleetEventName]: [K, CertfleetEvents[K], string | undefined] }[CertfleetEventName]> = [
    ['certificate.registered', { certificateId: ID, caId: 'ca-1', status: 'pending-activation' }, '$certfleet/events/certificates/registered/ca-1'],
    ['certificate.status-changed', { certificateId: ID, from: 'pending-activation', to: 'active' }, `$certfleet/events/certificates/activated/${ID}`],
    ['certificate.status-changed', { certificateId: ID, from: 'active', to: 'inactive' }, `$certfleet/events/certificates/deactivated/${ID}`],
    ['certificate.status-changed', { certificateId: ID, from: 'active', to: 'revoked' }, `$certfleet/events/certificates/revoked/${ID}`],
    ['certificate.status-changed', { certificateId: ID, from: 'active', to: 'pending-transfer' }, undefined],
    ['thing.connected', device, '$certfleet/events/things/connected/pump-7'],
    ['thing.disconnected', { ...device, reason: 'certificate-revoked' }, '$certfleet/events/things/disconnected/pump-7'],
    ['thing.connected', { ...device, thingName: null }, `$certfleet/events/certificates/connected/${ID}`],
    ['thing.connected', { ...device, thingName: 'a/+' }, undefined],
    ['policy.changed', { policyName: 'p' }, undefined],
    ['ca.status-changed', { caId: 'ca-1', to: 'revoked' }, undefined],
  ];
  for (const [name, event, topic] of cases) {
    it(`${name} ${JSON.stringify(event).slice(0, 60)} → ${topic ?? 'not published'}`, () => {
      assert.equal(lifecycleTopic(name, event as never), topic);
    });
  }

  it('publishes the envelope through the broker, and stops when told', async () => {
    const bus = new EventBus();
    const sent: Array<[string, EventEnvelope]> = [];
    const off = publishLifecycleEvents(bus, { publish: async (t, p) => void sent.push([t, JSON.parse(String(p)) as EventEnvelope]) }, () => new Date('2030-01-01T00:00:00Z'));
    bus.emit('thing.disconnected', { ...device, reason: 'keepalive-timeout' });
    bus.emit('policy.changed', { policyName: 'p' });
    off();
    bus.emit('thing.connected', device);
    await new Promise((r) => setImmediate(r));
    assert.equal(sent.length, 1);
    const [topic, env] = sent[0]!;
    assert.equal(topic, '$certfleet/events/things/disconnected/pump-7');
    assert.equal(env.type, 'thing.disconnected');
    assert.equal(env.at, '2030-01-01T00:00:00.000Z');
    assert.deepEqual(env.data, { ...device, reason: 'keepalive-timeout' });
  });
});
