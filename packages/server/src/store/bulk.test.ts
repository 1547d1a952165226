import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { AuditInput } from './audit-records.js';
import type { BulkAudit } from './bulk.js';
import type { NewCertificate } from './records.js';
import { describeOnBothDialects } from './test-dialects.js';
import { allBytes, caFixture, certificateFixture, rejectsWith, T0 } from './test-fixtures.js';

const intent = (issuerId: string, serial = randomBytes(16).toString('hex')) => ({ serial, issuerId, profile: 'device', tbsDer: allBytes(8), createdAt: T0 });

const bulkAudit: BulkAudit = {
  thingCreated: (t): AuditInput => ({ actor: 'token:t', action: 'thing.create', target: `thing:${t}` }),
  certificateIssued: (c: NewCertificate): AuditInput => ({ actor: 'token:t', action: 'certificate.issue', target: `certificate:${c.id}`, details: { serial: c.serial } }),
  policyAttached: (p, id): AuditInput => ({ actor: 'token:t', action: 'policy.attach', target: `policy:${p}`, details: { target: { type: 'certificate', id } } }),
  groupJoined: (g, t): AuditInput => ({ actor: 'token:t', action: 'group.add-thing', target: `group:${g}`, details: { thing: t } }),
};

await describeOnBothDialects('bulk store', ({ fresh }) => {
  it('journals 2,500 serials in one go (several statements), and a batch with one serial seen before records none', async () => {
    const { store } = await fresh();
    const ca = caFixture();
    await store.createCaWithKey(ca, { keyStore: 'sealed-file', sealed: allBytes() });
    const batch = Array.from({ length: 2500 }, () => intent(ca.id));
    await store.recordIntents(batch);
    for (const i of [batch[0]!, batch[1234]!, batch[2499]!]) assert.ok(await store.hasSerial(i.serial));
    const next = Array.from({ length: 1200 }, () => intent(ca.id));
    next[1100] = intent(ca.id, batch[7]!.serial);
    await rejectsWith(store.recordIntents(next), 'conflict');
    assert.equal(await store.hasSerial(next[0]!.serial), false, 'all or nothing');
  });

  it('registers a batch in one transaction: things (created or reused), certificates, history, attachments, memberships, chained audit', async () => {
    const { store } = await fresh();
    const ca = caFixture();
    await store.createCaWithKey(ca, { keyStore: 'sealed-file', sealed: allBytes() });
    await store.createPolicy('p1', { Version: '2012-10-17', Statement: [] } as never);
    await store.createGroup({ name: 'g1', parent: null });
    await store.createThing({ name: 'dev-0', attributes: { old: 'yes' } });
    await store.addThingToGroup('g1', 'dev-0');
    await store.appendAudit({ actor: 'init', action: 'x', target: 'y' });
    const things = Array.from({ length: 1500 }, (_, i) => ({ name: `dev-${i}`, attributes: { n: String(i) } }));
    const certificates = things.map((t) => certificateFixture(ca.id, { thingName: t.name, der: randomBytes(64) }));
    const r = await store.registerBulk({ things, certificates, policies: ['p1'], groups: ['g1'], audit: bulkAudit, actor: 'token:t' });
    assert.equal(r.createdThings.length, 1499, 'dev-0 existed');
    // dev-0: certificate + policy (no thing.create, already in g1); the others: thing + certificate + policy + group.
    assert.equal(r.audited, 2 + 1499 * 4);
    assert.deepEqual((await store.getThing('dev-0'))?.attributes, { old: 'yes' }, 'an existing thing keeps its attributes');
    assert.deepEqual((await store.getThing('dev-1499'))?.attributes, { n: '1499' });
    assert.equal(await store.countCertificates({ issuerId: ca.id }), 1500);
    assert.deepEqual(await store.policiesOfTarget({ type: 'certificate', id: certificates[777]!.id }), ['p1']);
    assert.equal((await store.groupsOfThing('dev-777'))[0]?.name, 'g1');
    assert.equal((await store.certificateHistory(certificates[5]!.id))[0]?.actor, 'token:t');
    const v = await store.verifyAuditLog();
    assert.ok(v.ok);
    assert.equal(v.entries, 1 + r.audited, 'the one entry before, then the batch');
    const live = await store.liveCertificatesOfThings(['dev-3', 'dev-4', 'nobody']);
    assert.deepEqual(live.map((c) => c.id).sort(), [certificates[3]!.id, certificates[4]!.id].sort());
  });

  it('writes nothing when any row is refused: a missing issuer or a duplicate certificate rolls the whole batch back', async () => {
    const { store } = await fresh();
    const ca = caFixture();
    await store.createCaWithKey(ca, { keyStore: 'sealed-file', sealed: allBytes() });
    const before = (await store.verifyAuditLog()).entries;
    const things = [{ name: 'r-1' }, { name: 'r-2' }];
    const orphan = [certificateFixture(ca.id, { thingName: 'r-1' }), certificateFixture('no-such-ca', { thingName: 'r-2' })];
    await rejectsWith(store.registerBulk({ things, certificates: orphan, policies: [], groups: [], audit: bulkAudit }), 'not-found');
    const ok = certificateFixture(ca.id, { thingName: 'r-1', der: randomBytes(40) });
    await store.registerBulk({ things: [{ name: 'r-1' }], certificates: [ok], policies: [], groups: [] });
    const dup = [certificateFixture(ca.id, { thingName: 'r-2', der: randomBytes(40) }), { ...ok, thingName: 'r-2' }];
    await rejectsWith(store.registerBulk({ things: [{ name: 'r-2' }], certificates: dup, policies: [], groups: [], audit: bulkAudit }), 'conflict');
    assert.equal(await store.getThing('r-2'), undefined);
    assert.equal(await store.getCertificate(dup[0]!.id), undefined);
    assert.equal((await store.verifyAuditLog()).entries, before, 'no audit entry from a rolled-back batch, none from an unaudited one');
  });
});
