import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus } from '../events/index.js';
import type { DeviceIdentity } from './admission.js';
import { decide, PolicyLoader, PolicySession, refreshInBackground } from './policy-session.js';
import { FakePolicies, FakeThings, fleet } from './test-fixtures.js';
import { DEVICE_POLICY } from './test-harness.js';

function setup() {
  const f = fleet();
  const policies = new FakePolicies().attach(f.dev1, 'device', DEVICE_POLICY);
  const things = new FakeThings().set('dev-1', { site: 'paris' });
  const invalid: string[] = [];
  const loader = new PolicyLoader({ policies, things, certificates: f.certificates }, (name) => void invalid.push(name));
  const identity: DeviceIdentity = { certificateId: f.dev1.cert.fingerprint(), thingName: 'dev-1', subjectCn: 'dev-1', caIds: ['issuing', 'root'] };
  return { f, policies, things, invalid, session: new PolicySession(loader, identity, 'dev-1') };
}

describe('PolicySession', () => {
  it('loads once, then decides in memory with the variables filled in', async () => {
    const { policies, session } = setup();
    const loaded = await session.current();
    assert.deepEqual(loaded.context, { certificateId: loaded.context.certificateId, clientId: 'dev-1', thingName: 'dev-1', thingAttributes: { site: 'paris' }, subjectCn: 'dev-1' });
    assert.equal(decide(loaded, 'connect', 'dev-1').allowed, true);
    assert.equal(decide(loaded, 'publish', 'sites/paris/telemetry').allowed, true);
    assert.equal(decide(loaded, 'publish', 'sites/lyon/telemetry').allowed, false);
    await session.current();
    assert.equal(policies.reads, 1);
  });

  it('a change during a load is not missed: the load that raced it is read again', async () => {
    const { policies, f, session } = setup();
    const first = session.current();
    session.markStale(); // the registry changed something while the first read was in flight
    policies.attach(f.dev1, 'device', { statements: [] });
    const loaded = await first;
    assert.equal(decide(loaded, 'connect', 'dev-1').allowed, false, 'the read after the change wins');
    assert.equal(policies.reads, 2);
  });

  it('peek() is empty while stale and starts the reload', async () => {
    const { policies, session } = setup();
    await session.current();
    session.markStale();
    assert.equal(session.peek(), undefined);
    await refreshInBackground([session]);
    assert.ok(session.peek());
    assert.equal(policies.reads, 2);
  });

  it('denies everything when a stored document is invalid (it might have held a deny)', async () => {
    const { policies, f, session, invalid } = setup();
    policies.attach(f.dev1, 'broken', { statements: [{ effect: 'deny', actions: ['fly'], resources: ['#'] }] });
    const loaded = await session.current();
    assert.equal(decide(loaded, 'connect', 'dev-1').allowed, false);
    assert.deepEqual(invalid, ['broken']);
  });

  it('denies everything when the certificate is no longer active, and says so', async () => {
    const { f, session } = setup();
    f.certificates.setStatus(f.dev1, 'inactive');
    const loaded = await session.current();
    assert.equal(loaded.certificateNotActive, 'inactive');
    assert.equal(decide(loaded, 'connect', 'dev-1').allowed, false);
  });

  it('follows the certificate to another thing', async () => {
    const { f, things, session } = setup();
    things.set('dev-9', { site: 'lyon' });
    f.certificates.rows.get(f.dev1.cert.fingerprint())!.thingName = 'dev-9';
    const loaded = await session.current();
    assert.equal(session.thingName, 'dev-9');
    assert.equal(decide(loaded, 'publish', 'sites/lyon/telemetry').allowed, true);
  });
});

describe('PolicyLoader following the registry', () => {
  function following() {
    const f = fleet();
    const policies = new FakePolicies().attach(f.dev1, 'device', DEVICE_POLICY);
    const things = new FakeThings().set('dev-1', { site: 'paris' });
    let certificateReads = 0;
    const certificates = {
      getCertificate: (id: string) => {
        certificateReads++;
        return f.certificates.getCertificate(id);
      },
    };
    const bus = new EventBus();
    const loader = new PolicyLoader({ policies, things, certificates });
    const unfollow = loader.follow(bus);
    const identity = (recordEpoch?: number): DeviceIdentity => ({
      certificateId: f.dev1.cert.fingerprint(), thingName: 'dev-1', subjectCn: 'dev-1', caIds: ['issuing', 'root'],
      ...(recordEpoch === undefined ? {} : { recordEpoch }),
    });
    return { f, policies, things, bus, loader, unfollow, identity, certificateReads: () => certificateReads };
  }

  it('takes admission\'s record while no event came since it was read: the certificate is not read again', async () => {
    const { loader, identity, certificateReads } = following();
    const loaded = await loader.load(identity(loader.epoch), 'dev-1');
    assert.equal(certificateReads(), 0);
    assert.equal(loaded.certificateNotActive, null);
    assert.equal(decide(loaded, 'publish', 'sites/paris/telemetry').allowed, true);
  });

  it('reads the certificate again after an event since admission: a status change in between is caught', async () => {
    const { f, bus, loader, identity, certificateReads } = following();
    const admittedAt = loader.epoch;
    f.certificates.setStatus(f.dev1, 'revoked');
    bus.emit('certificate.status-changed', { certificateId: f.dev1.cert.fingerprint(), from: 'active', to: 'revoked' });
    const loaded = await loader.load(identity(admittedAt), 'dev-1');
    assert.equal(certificateReads(), 1);
    assert.equal(loaded.certificateNotActive, 'revoked');
    assert.equal(decide(loaded, 'connect', 'dev-1').allowed, false);
  });

  it('keeps what it read for the certificate\'s next connections, each with its own client id', async () => {
    const { policies, loader, identity } = following();
    await loader.load(identity(loader.epoch), 'dev-1');
    const again = await loader.load(identity(loader.epoch), 'dev-1-bis');
    assert.equal(policies.reads, 1);
    assert.equal(again.context.clientId, 'dev-1-bis');
    assert.deepEqual(again.context.thingAttributes, { site: 'paris' });
  });

  for (const [event, payload] of [
    ['policy.changed', { policyName: 'device' }],
    ['thing.changed', { thingName: 'dev-1' }],
    ['certificate.status-changed', { certificateId: 'other', from: 'active', to: 'inactive' }],
  ] as const) {
    it(`forgets what it kept on ${event}`, async () => {
      const { f, policies, bus, loader, identity } = following();
      await loader.load(identity(loader.epoch), 'dev-1');
      policies.attach(f.dev1, 'device', { statements: [] });
      bus.emit(event, payload as never);
      const loaded = await loader.load(identity(loader.epoch), 'dev-1');
      assert.equal(policies.reads, 2);
      assert.equal(decide(loaded, 'connect', 'dev-1').allowed, false, 'the read after the change wins');
    });
  }

  it('does not keep a read an event raced', async () => {
    const { f, policies, things, bus, loader, identity } = following();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const getThing = things.getThing.bind(things);
    things.getThing = async (name) => {
      await gate;
      return getThing(name);
    };
    const first = loader.load(identity(loader.epoch), 'dev-1');
    await new Promise((r) => setImmediate(r));
    policies.attach(f.dev1, 'device', { statements: [] });
    bus.emit('policy.changed', { policyName: 'device' });
    release();
    await first;
    const after = await loader.load(identity(loader.epoch), 'dev-1');
    assert.equal(policies.reads, 2);
    assert.equal(decide(after, 'connect', 'dev-1').allowed, false);
  });

  it('without the registry\'s events it reads everything every time', async () => {
    const { policies, loader, identity, unfollow, certificateReads } = following();
    unfollow();
    await loader.load(identity(loader.epoch), 'dev-1');
    await loader.load(identity(loader.epoch), 'dev-1');
    assert.equal(policies.reads, 2);
    assert.equal(certificateReads(), 2);
  });
});
