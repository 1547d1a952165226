import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { PROFILES } from '@certfleet/pki';
import { makeChild, type TestCa } from '../../../pki/src/testing/hierarchy.js';
import { Admission, startBroker, type RunningBroker } from '../broker/index.js';
import { fleet, keyPem } from '../broker/test-fixtures.js';
import { mosquitto, onPath, waitFor, type Entry, type Harness } from '../broker/test-harness.js';
import type { CertfleetEvents } from '../events/index.js';
import { publishLifecycleEvents } from '../events/lifecycle-topics.js';
import type { EventEnvelope } from '../events/envelope.js';
import { testNode, type TestNode } from '../testing/services.js';

/*
 * Just-in-time provisioning and registration against a real TLS broker wired
 * to a real store, with MQTT.js and mosquitto_pub as devices, and the
 * lifecycle events they cause on `$certfleet/events/…`.
 */

const f = fleet();
const jitrCa = makeChild(f.root, PROFILES['intermediate-ca'], { name: 'CN=JITR CA' });
const opsCa = makeChild(f.root, PROFILES['intermediate-ca'], { name: 'CN=Ops CA' });
const deviceOf = (ca: TestCa, name: string) => makeChild(ca, PROFILES.device, { name });
const ACTOR = { id: 'test' };

let node: TestNode;
let broker: RunningBroker;
let unpublish: () => void;
const logs: Entry[] = [];
const clients: MqttClient[] = [];
const registered: Array<CertfleetEvents['certificate.registered']> = [];
/** Lifecycle messages the observer device received: topic → envelopes. */
const seen: Array<[string, EventEnvelope]> = [];

const log = (level: string) => (obj: Record<string, unknown>, msg: string) => void logs.push({ level, obj, msg });
const refusedWith = (reason: string) => logs.filter((l) => l.msg === 'device refused' && l.obj.reason === reason);

async function connect(clientId: string, leaf: TestCa): Promise<MqttClient> {
  const c = await connectAsync(
    `mqtts://localhost:${broker.port}`,
    { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ca: f.root.cert.toPem(), key: keyPem(leaf.key), cert: leaf.cert.toPem() },
    false,
  );
  clients.push(c);
  return c;
}

async function registerCa(id: string, ca: TestCa, parentId: string | null): Promise<void> {
  const c = ca.cert;
  await node.s.store.insertCa({
    id, name: id, parentId, kind: 'external', status: 'active', keyAlgorithm: c.keyAlgorithm(), subject: c.subject(), serial: c.serial(),
    certificateDer: c.der, notBefore: c.notBefore(), notAfter: c.notAfter(), pathLen: c.basicConstraints()?.pathLen ?? null, createdAt: new Date(),
  });
}

const jitp = (template: object) => JSON.stringify(template);
const message = (topic: string) => seen.find(([t]) => t === topic)?.[1];

before(async () => {
  node = await testNode();
  const s = node.s;
  await registerCa('fleet-root', f.root, null);
  await registerCa('fleet-issuing', f.issuing, 'fleet-root');
  await registerCa('jitr-ca', jitrCa, 'fleet-root');
  await registerCa('ops-ca', opsCa, 'fleet-root');
  await s.policies.create(ACTOR, 'jit-device', {
    statements: [
      { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
      { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['things/${thing.name}/#'] },
    ],
  });
  await s.policies.create(ACTOR, 'events-observer', {
    statements: [
      { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
      { effect: 'allow', actions: ['subscribe', 'receive'], resources: ['$certfleet/events/#'] },
    ],
  });
  await s.policies.create(ACTOR, 'by-cn', { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${cert.subject.cn}'] }] });
  await s.things.createGroup(ACTOR, { name: 'sensors' });
  await s.authorities.updateProvisioning(ACTOR, 'fleet-issuing', {
    autoRegistration: true,
    provisioningTemplate: jitp({ thingName: '${cert.subject.cn}', attributes: { site: 'paris', serial: '${cert.subject.serialNumber}' }, groups: ['sensors'], policies: ['jit-device'] }),
  });
  await s.authorities.updateProvisioning(ACTOR, 'jitr-ca', { autoRegistration: true, provisioningTemplate: null });
  await s.authorities.updateProvisioning(ACTOR, 'ops-ca', { autoRegistration: true, provisioningTemplate: jitp({ thingName: 'ops-${cert.subject.cn}', policies: ['events-observer'] }) });
  s.bus.on('certificate.registered', (e) => void registered.push(e));

  const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now, autoRegister: s.jit.register, caCacheMs: 0 });
  broker = await startBroker({
    port: 0,
    tls: { key: keyPem(f.server.key), cert: f.server.cert.toPem() + f.issuing.cert.toPem() },
    admission,
    policies: { policies: s.store, things: s.store, certificates: s.store },
    connections: s.store,
    events: s.bus,
    nodeId: 'jit-test',
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  });
  unpublish = publishLifecycleEvents(s.bus, broker, s.now);

  // The observer is itself provisioned just in time (under ops-ca), then watches every lifecycle event.
  const observer = await connect('ops-observer', deviceOf(opsCa, 'CN=observer'));
  observer.on('message', (topic, payload) => void seen.push([topic, JSON.parse(payload.toString()) as EventEnvelope]));
  await observer.subscribeAsync('$certfleet/events/#', { qos: 1 });
});

after(async () => {
  for (const c of clients) c.end(true);
  unpublish?.();
  await broker?.close();
  await node?.close();
});

describe('just-in-time provisioning (a CA with a template)', () => {
  it('admits the first connection of an unknown certificate and provisions thing, policies and groups in one step', async () => {
    const leaf = deviceOf(f.issuing, 'CN=jitp-1,serialNumber=SN-0001');
    const id = leaf.cert.fingerprint();
    const c = await connect('jitp-1', leaf);
    await c.subscribeAsync('things/jitp-1/#', { qos: 1 });
    const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(p.toString())));
    await c.publishAsync('things/jitp-1/temp', '21.5', { qos: 1 });
    assert.equal(await got, '21.5', 'the template policy is in force on that same connection');

    const s = node.s;
    const cert = await s.store.getCertificate(id);
    assert.deepEqual([cert?.status, cert?.thingName, cert?.issuerId, cert?.profile], ['active', 'jitp-1', 'fleet-issuing', 'jitp']);
    assert.ok(cert?.der.equals(leaf.cert.der), "the device's own certificate is stored");
    const thing = await s.things.getThing('jitp-1');
    assert.deepEqual(thing.attributes, { site: 'paris', serial: 'SN-0001' });
    assert.deepEqual(thing.groups.map((g) => g.name), ['sensors']);
    assert.deepEqual(await s.store.policiesOfTarget({ type: 'certificate', id }), ['jit-device']);
    const audit = (await s.store.listAuditLog({ limit: 10, target: `certificate:${id}` })).items;
    assert.deepEqual(audit.map((e) => [e.actor, e.action]), [['system', 'certificate.jitp']]);
    assert.deepEqual(registered.find((e) => e.certificateId === id), { certificateId: id, caId: 'fleet-issuing', status: 'active' });

    await waitFor('the lifecycle messages', () => message('$certfleet/events/things/connected/jitp-1') !== undefined);
    const reg = message('$certfleet/events/certificates/registered/fleet-issuing');
    assert.equal(reg?.type, 'certificate.registered');
    const connected = message('$certfleet/events/things/connected/jitp-1')!;
    assert.equal(connected.type, 'thing.connected');
    assert.deepEqual({ ...connected.data, remote: undefined }, { thingName: 'jitp-1', certificateId: id, clientId: 'jitp-1', remote: undefined });
    await c.endAsync();
    await waitFor('the disconnect message', () => message('$certfleet/events/things/disconnected/jitp-1') !== undefined);
    assert.equal((message('$certfleet/events/things/disconnected/jitp-1')?.data as { reason: string }).reason, 'client-disconnect');
  });

  it('two simultaneous first connections of one certificate create one thing and neither fails admission', async () => {
    const leaf = deviceOf(f.issuing, 'CN=race-1');
    const id = leaf.cert.fingerprint();
    // Both get CONNACK (the connect policy wants the thing name as client id, so the second then takes the session over).
    const results = await Promise.allSettled([connect('race-1', leaf), connect('race-1', leaf)]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled'], JSON.stringify(results.map((r) => r.status === 'rejected' && String(r.reason))));
    assert.equal(refusedWith('provisioning-failed').length + refusedWith('admission-failed').length, 0, JSON.stringify(logs.filter((l) => l.msg === 'device refused')));
    assert.equal((await node.s.store.listThings({ limit: 1000 })).items.filter((t) => t.name === 'race-1').length, 1);
    assert.equal((await node.s.store.listAuditLog({ limit: 10, target: `certificate:${id}` })).items.length, 1);
    assert.equal(registered.filter((e) => e.certificateId === id).length, 1);
  });

  it('refuses (provisioning-failed) and writes nothing when the template cannot be applied', async () => {
    const s = node.s;
    const saved = (await s.authorities.provisioning('fleet-issuing')).provisioningTemplate;
    await s.authorities.updateProvisioning(ACTOR, 'fleet-issuing', { provisioningTemplate: jitp({ thingName: '${cert.subject.cn}', policies: ['no-such-policy'] }) });
    try {
      await assert.rejects(connect('bad-1', deviceOf(f.issuing, 'CN=bad-1')));
      await waitFor('the refusal', () => refusedWith('provisioning-failed').length > 0);
      assert.match(String(refusedWith('provisioning-failed')[0]!.obj.detail), /no-such-policy/);
      assert.equal(await s.store.getThing('bad-1'), undefined);
    } finally {
      await s.authorities.updateProvisioning(ACTOR, 'fleet-issuing', { provisioningTemplate: saved });
    }
  });

  it('leaves a certificate of a CA without auto-registration unknown', async () => {
    await assert.rejects(connect('stranger', deviceOf(f.root, 'CN=stranger')));
    await waitFor('the refusal', () => refusedWith('unknown-certificate').length > 0);
  });

  const mosquittoPub = onPath('mosquitto_pub');
  it('mosquitto_pub is provisioned and publishes on its first connection (exit 0)', { skip: mosquittoPub ? false : 'mosquitto_pub is not installed' }, async () => {
    const leaf = deviceOf(f.issuing, 'CN=jitp-mosq');
    const h = { f, broker } as unknown as Harness;
    const r = await mosquitto(mosquittoPub!, h, leaf, ['-i', 'jitp-mosq', '-t', 'things/jitp-mosq/hello', '-m', 'hi', '-q', '1']);
    assert.equal(r.code, 0, r.out);
    assert.equal((await node.s.store.getCertificate(leaf.cert.fingerprint()))?.thingName, 'jitp-mosq');
  });
});

describe('just-in-time registration (a CA without a template)', () => {
  it('refuses the first connection, registers pending-activation, tells MQTT and the bus; admits once activated', async () => {
    const s = node.s;
    const leaf = deviceOf(jitrCa, 'CN=jitr-1');
    const id = leaf.cert.fingerprint();
    await assert.rejects(connect('jitr-1', leaf));
    const cert = await s.store.getCertificate(id);
    assert.deepEqual([cert?.status, cert?.thingName, cert?.issuerId, cert?.profile], ['pending-activation', null, 'jitr-ca', 'jitr']);
    assert.deepEqual((await s.store.listAuditLog({ limit: 10, target: `certificate:${id}` })).items.map((e) => [e.actor, e.action]), [['system', 'certificate.jitr']]);
    assert.deepEqual(registered.find((e) => e.certificateId === id), { certificateId: id, caId: 'jitr-ca', status: 'pending-activation' });
    await waitFor('the registered message', () => seen.some(([t, e]) => t === '$certfleet/events/certificates/registered/jitr-ca' && (e.data as { certificateId: string }).certificateId === id));
    await waitFor('the refusal', () => refusedWith('pending-activation').length > 0);

    await assert.rejects(connect('jitr-1', leaf), 'still pending: refused again');
    assert.equal((await s.store.listAuditLog({ limit: 10, target: `certificate:${id}` })).items.length, 1, 'registered once');

    // What custom logic does on the event: give it a policy, activate it.
    await s.policies.attach(ACTOR, 'by-cn', { certificate: id });
    await s.certificates.changeStatus(ACTOR, id, 'active');
    await waitFor('the activated message', () => message(`$certfleet/events/certificates/activated/${id}`) !== undefined);
    const c = await connect('jitr-1', leaf);
    assert.ok(c.connected);

    // Revoked: disconnected at once, and both facts are published.
    await s.revoker.revoke(ACTOR, id, 'keyCompromise');
    await waitFor('the revoked message', () => message(`$certfleet/events/certificates/revoked/${id}`) !== undefined);
    await waitFor('the disconnect message', () => message(`$certfleet/events/certificates/disconnected/${id}`) !== undefined);
    assert.equal((message(`$certfleet/events/certificates/disconnected/${id}`)?.data as { reason: string }).reason, 'certificate-revoked');
  });
});
