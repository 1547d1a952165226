import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { NewEnrollmentSecret, Store, ThingChange } from './index.js';
import { describeOnBothDialects } from './test-dialects.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';

const HOUR = 3_600_000;
const audit = (action: string) => ({ actor: 'token:test', action, target: 'x' });
const create = (attributes: Record<string, string> = {}) => (existing: unknown): ThingChange => (existing ? { kind: 'keep' } : { kind: 'create', attributes });

function secret(over: Partial<NewEnrollmentSecret> = {}): NewEnrollmentSecret {
  return {
    id: uniqueName('es'),
    username: uniqueName('est'),
    secretHash: randomBytes(32).toString('hex'),
    thingName: null,
    batch: 'b1',
    template: null,
    profile: 'device',
    createdAt: T0,
    expiresAt: at(HOUR),
    ...over,
  };
}

async function withCa(s: Store) {
  const ca = caFixture();
  await s.insertCa(ca);
  return ca;
}

await describeOnBothDialects('EST enrollment', ({ store }) => {
  it('stores secrets by hash, finds them by user name, pages a batch in creation order', async () => {
    const s = store();
    const batch = uniqueName('batch');
    const rows = [0, 1, 2].map((i) => secret({ batch, createdAt: at(i) }));
    await s.insertEnrollmentSecrets(rows, audit('enrollment-secret.create'));
    const got = await s.getEnrollmentSecretByUsername(rows[1]!.username);
    assert.deepEqual(got, { ...rows[1], spentAt: null, certificateId: null, revokedAt: null });
    const first = await s.listEnrollmentSecrets({ batch, limit: 2 });
    assert.deepEqual(first.items.map((r) => r.id), [rows[0]!.id, rows[1]!.id]);
    const second = await s.listEnrollmentSecrets({ batch, limit: 2, cursor: first.next! });
    assert.deepEqual([second.items.map((r) => r.id), second.next], [[rows[2]!.id], undefined]);
    await rejectsWith(s.insertEnrollmentSecrets([secret({ username: rows[0]!.username })]), 'conflict');
  });

  it('spends a secret once: of two concurrent enrollments exactly one commits, with its thing and certificate', async () => {
    const s = store();
    const ca = await withCa(s);
    const thing = uniqueName('dev');
    const row = secret({ thingName: thing });
    await s.insertEnrollmentSecrets([row]);
    const attempt = () => s.enrollWithSecret({ secretId: row.id, at: at(1000), certificate: certificateFixture(ca.id, { thingName: thing }), decideThing: create({ model: 'm1' }), policies: [], groups: [] }, audit('certificate.issue'));
    const results = await Promise.allSettled([attempt(), attempt()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal(lost.reason.code, 'invalid-state');
    const spent = await s.getEnrollmentSecretByUsername(row.username);
    assert.deepEqual(spent?.spentAt, at(1000));
    const certificate = await s.getCertificate(spent!.certificateId!);
    assert.equal(certificate?.thingName, thing);
    assert.deepEqual((await s.getThing(thing))?.attributes, { model: 'm1' });
    assert.equal((await s.countCertificates({ thing })), 1);
  });

  it('refuses an expired or revoked secret and stores nothing', async () => {
    const s = store();
    const ca = await withCa(s);
    const expired = secret();
    const revoked = secret();
    await s.insertEnrollmentSecrets([expired, revoked]);
    const r = await s.revokeEnrollmentSecret(revoked.id, at(5));
    assert.deepEqual(r.revokedAt, at(5));
    for (const [row, when] of [[expired, at(HOUR)], [revoked, at(10)]] as const) {
      const cert = certificateFixture(ca.id);
      await rejectsWith(s.enrollWithSecret({ secretId: row.id, at: when, certificate: cert, policies: [], groups: [] }), 'invalid-state');
      assert.equal(await s.getCertificate(cert.id), undefined);
    }
    await rejectsWith(s.revokeEnrollmentSecret('es-none', at(1)), 'not-found');
    const spent = secret();
    await s.insertEnrollmentSecrets([spent]);
    await s.enrollWithSecret({ secretId: spent.id, at: at(1), certificate: certificateFixture(ca.id), policies: [], groups: [] });
    await rejectsWith(s.revokeEnrollmentSecret(spent.id, at(2)), 'invalid-state');
  });

  it('re-enrollment: the new certificate with the old one\'s policies and a link; a second one supersedes the first; settling revokes the old', async () => {
    const s = store();
    const ca = await withCa(s);
    const thing = uniqueName('dev');
    await s.createThing({ name: thing });
    const policy = uniqueName('p');
    await s.createPolicy(policy, { statements: [] });
    const old = certificateFixture(ca.id, { thingName: thing });
    await s.insertCertificate(old);
    await s.attachPolicy(policy, { type: 'certificate', id: old.id });

    const first = certificateFixture(ca.id, { thingName: thing });
    const r1 = await s.insertReenrollment({ certificate: first, oldCertificateId: old.id, at: at(1), graceUntil: at(100), actor: 'certificate:x' }, audit('certificate.issue'));
    assert.deepEqual(r1, { policies: [policy], superseded: [] });
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: first.id }), [policy]);
    assert.equal((await s.pendingReenrollment(first.id))?.oldCertificateId, old.id);
    assert.equal((await s.getCertificate(old.id))?.status, 'active');

    const second = certificateFixture(ca.id, { thingName: thing });
    const r2 = await s.insertReenrollment({ certificate: second, oldCertificateId: old.id, at: at(2), graceUntil: at(200), actor: 'certificate:x' });
    assert.deepEqual(r2.superseded.map((c) => [c.id, c.status, c.revocationReason]), [[first.id, 'revoked', 'superseded']]);
    assert.equal(await s.pendingReenrollment(first.id), undefined);

    assert.deepEqual((await s.dueReenrollments(at(150), 10)).map((l) => l.newCertificateId), []);
    assert.deepEqual((await s.dueReenrollments(at(200), 10)).map((l) => l.newCertificateId), [second.id]);
    const settled = await s.settleReenrollment(second.id, 'used', at(3), 'system', audit('certificate.revoke'));
    assert.equal(settled?.from, 'active');
    assert.deepEqual([settled?.revoked?.id, settled?.revoked?.status, settled?.revoked?.revocationReason, settled?.link.outcome], [old.id, 'revoked', 'superseded', 'used']);
    assert.equal(await s.settleReenrollment(second.id, 'grace-expired', at(4), 'system'), undefined);
    // The old certificate is revoked now: it cannot be re-enrolled again.
    await rejectsWith(s.insertReenrollment({ certificate: certificateFixture(ca.id, { thingName: thing }), oldCertificateId: old.id, at: at(5), graceUntil: at(6), actor: 'x' }), 'invalid-state');
  });

  it('binds a network identity to one thing, once per type; a refused bootstrap writes nothing', async () => {
    const s = store();
    const ca = await withCa(s);
    const imsi = `2620${randomBytes(6).readUIntBE(0, 6) % 1e11}`.padEnd(15, '0');
    const thing = uniqueName('imsi');
    const boot = (name: string, value = imsi, decide = create({ imsi: value })) =>
      s.bootstrapNetworkIdentity({ type: 'imsi', value, thingName: name, at: at(1), certificate: certificateFixture(ca.id, { thingName: name }), decideThing: decide, policies: [], groups: [] }, audit('provisioning.network-bootstrap'));
    assert.deepEqual(await boot(thing).then((r) => [r.change, r.bound]), ['create', true]);
    assert.equal(await s.networkIdentityThing('imsi', imsi), thing);
    assert.equal(await s.networkIdentityThing('imei', imsi), undefined);
    // Again for the same thing: another certificate, the binding unchanged.
    assert.deepEqual(await boot(thing).then((r) => [r.change, r.bound]), ['keep', false]);
    assert.equal(await s.countCertificates({ thing }), 2);
    // The identity on another thing, or another IMSI on this thing: refused, nothing written.
    const other = uniqueName('imsi');
    await rejectsWith(boot(other), 'conflict');
    assert.equal(await s.getThing(other), undefined);
    await rejectsWith(boot(thing, imsi.slice(0, 14)), 'conflict');
    await rejectsWith(boot(thing, imsi, () => { throw Object.assign(new Error('x')); }), 'internal');
    assert.equal(await s.countCertificates({ thing }), 2);
  });
});
