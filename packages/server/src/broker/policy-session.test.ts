import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
