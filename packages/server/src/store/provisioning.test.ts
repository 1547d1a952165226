import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { Store } from './index.js';
import type { DeviceProvisioning, ThingChange } from './provisioning.js';
import { describeOnBothDialects } from './test-dialects.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';

const HOUR = 3_600_000;
const audit = (action: string) => ({ actor: 'claim:test', action, target: 'x' });

/** A CA, a claim certificate on it, and a certificate made for that claim with its (unconsumed) token. */
async function claimed(s: Store, expiresAt = at(HOUR)) {
  const ca = caFixture();
  await s.insertCa(ca);
  const claim = certificateFixture(ca.id);
  await s.insertCertificate(claim);
  await s.insertClaim({ certificateId: claim.id, template: 'tpl', createdAt: T0 });
  const device = certificateFixture(ca.id);
  const tokenHash = randomBytes(32).toString('hex');
  await s.insertCertificateWithOwnershipToken(device, { tokenHash, claimCertificateId: claim.id, createdAt: T0, expiresAt }, audit('certificate.issue'));
  return { ca, claim, device, tokenHash };
}

function plan(c: { claim: { id: string }; device: { id: string }; tokenHash: string }, over: Partial<DeviceProvisioning> = {}): DeviceProvisioning {
  return {
    tokenHash: c.tokenHash,
    claimCertificateId: c.claim.id,
    certificateId: c.device.id,
    at: at(1000),
    thingName: uniqueName('thing'),
    decideThing: (existing): ThingChange => (existing ? { kind: 'keep' } : { kind: 'create', attributes: { model: 'x1' } }),
    policies: [],
    groups: [],
    ...over,
  };
}

await describeOnBothDialects('fleet provisioning', ({ store, fresh }) => {
  it('stores templates by name, pages them, replaces and deletes them', async () => {
    let now = T0;
    const { store: s } = await fresh({ now: () => now });
    const created = await s.createProvisioningTemplate('b', { thing: { name: '${parameters.SerialNumber}' } });
    assert.deepEqual(created, { name: 'b', document: { thing: { name: '${parameters.SerialNumber}' } }, createdAt: T0, updatedAt: T0 });
    await s.createProvisioningTemplate('a', {});
    await rejectsWith(s.createProvisioningTemplate('a', {}), 'conflict');
    const first = await s.listProvisioningTemplates({ limit: 1 });
    assert.deepEqual(first.items.map((t) => t.name), ['a']);
    const second = await s.listProvisioningTemplates({ limit: 1, cursor: first.next! });
    assert.deepEqual([second.items.map((t) => t.name), second.next], [['b'], undefined]);
    now = at(5);
    assert.deepEqual((await s.replaceProvisioningTemplate('a', { policies: ['p'] })).updatedAt, at(5));
    assert.deepEqual((await s.getProvisioningTemplate('a'))?.document, { policies: ['p'] });
    await rejectsWith(s.replaceProvisioningTemplate('ghost', {}), 'not-found');
    await s.deleteProvisioningTemplate('a');
    assert.equal(await s.getProvisioningTemplate('a'), undefined);
    await rejectsWith(s.deleteProvisioningTemplate('a'), 'not-found');
  });

  it('records claims and tokens; provisioning consumes the token once and does everything in one transaction', async () => {
    const s = store();
    const c = await claimed(s);
    assert.deepEqual(await s.getClaim(c.claim.id), { certificateId: c.claim.id, template: 'tpl', createdAt: T0 });
    assert.equal(await s.getClaim(c.device.id), undefined);
    await rejectsWith(s.insertClaim({ certificateId: 'f'.repeat(64), template: 'tpl', createdAt: T0 }), 'not-found');
    const token = await s.getOwnershipToken(c.tokenHash);
    assert.deepEqual(token, { tokenHash: c.tokenHash, certificateId: c.device.id, claimCertificateId: c.claim.id, createdAt: T0, expiresAt: at(HOUR), consumedAt: null });

    await s.createPolicy('device', { statements: [] });
    const group = uniqueName('grp');
    await s.createGroup({ name: group });
    const p = plan(c, { policies: ['device'], groups: [group] });
    const result = await s.provisionDevice(p, audit('provisioning.provision'));
    assert.equal(result.change, 'create');
    assert.deepEqual(result.thing.attributes, { model: 'x1' });
    assert.equal((await s.getCertificate(c.device.id))?.thingName, p.thingName);
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: c.device.id }), ['device']);
    assert.deepEqual((await s.groupsOfThing(p.thingName)).map((g) => g.name), [group]);
    assert.deepEqual((await s.getOwnershipToken(c.tokenHash))?.consumedAt, at(1000));
    const log = await s.listAuditLog({ limit: 10 });
    assert.ok(log.items.some((e) => e.action === 'provisioning.provision'));

    await rejectsWith(s.provisionDevice(p), 'invalid-state', /no longer valid/);
  });

  it('rolls everything back when one step fails: the token stays unconsumed and no thing is made', async () => {
    const s = store();
    const c = await claimed(s);
    const p = plan(c, { policies: ['no-such-policy'] });
    await rejectsWith(s.provisionDevice(p), 'not-found');
    assert.equal(await s.getThing(p.thingName), undefined);
    assert.equal((await s.getOwnershipToken(c.tokenHash))?.consumedAt, null);
    const conflict = plan(c, { decideThing: () => { throw new CertfleetError('conflict', 'override: fail'); } });
    await rejectsWith(s.provisionDevice(conflict), 'conflict', /override: fail/);
    assert.equal((await s.getOwnershipToken(c.tokenHash))?.consumedAt, null);
    // Then it works.
    assert.equal((await s.provisionDevice(plan(c))).change, 'create');
  });

  it('updates or keeps an existing thing as decided, and refuses a token that expired, belongs to another claim or certificate', async () => {
    const s = store();
    const name = uniqueName('thing');
    await s.createThing({ name, attributes: { keep: 'me' } });
    const c1 = await claimed(s);
    const kept = await s.provisionDevice(plan(c1, { thingName: name }));
    assert.deepEqual([kept.change, kept.thing.attributes], ['keep', { keep: 'me' }]);
    const c2 = await claimed(s);
    const updated = await s.provisionDevice(plan(c2, { thingName: name, decideThing: () => ({ kind: 'update', attributes: { fresh: '1' } }) }));
    assert.deepEqual([updated.change, updated.thing.attributes], ['update', { fresh: '1' }]);

    const c3 = await claimed(s, at(500));
    await rejectsWith(s.provisionDevice(plan(c3)), 'invalid-state'); // at(1000) is past at(500)
    const c4 = await claimed(s);
    await rejectsWith(s.provisionDevice(plan(c4, { claimCertificateId: c1.claim.id })), 'invalid-state');
    await rejectsWith(s.provisionDevice(plan(c4, { certificateId: c1.device.id })), 'invalid-state');
  });

  it('sweeps an expired token: deletes a never-used certificate, keeps a used one, purges consumed tokens', async () => {
    const s = store();
    const unused = await claimed(s, at(100));
    const used = await claimed(s, at(100));
    await s.createPolicy(uniqueName('p'), { statements: [] });
    const thing = uniqueName('thing');
    await s.createThing({ name: thing });
    await s.attachCertificateToThing(used.device.id, thing);
    const expired = await s.expiredOwnershipTokens(at(200), 1000);
    const mine = expired.filter((t) => t.tokenHash === unused.tokenHash || t.tokenHash === used.tokenHash);
    assert.equal(mine.length, 2);

    assert.equal(await s.discardUnprovisionedCertificate(unused.tokenHash, at(200), audit('certificate.discard')), 'deleted');
    assert.equal(await s.getCertificate(unused.device.id), undefined);
    assert.deepEqual(await s.certificateHistory(unused.device.id), []);
    assert.equal(await s.getOwnershipToken(unused.tokenHash), undefined);
    assert.equal(await s.discardUnprovisionedCertificate(used.tokenHash, at(200)), 'kept');
    assert.equal((await s.getCertificate(used.device.id))?.thingName, thing);
    assert.equal(await s.discardUnprovisionedCertificate(used.tokenHash, at(200)), 'gone');

    const live = await claimed(s, at(HOUR));
    assert.equal(await s.discardUnprovisionedCertificate(live.tokenHash, at(200)), 'gone', 'not expired yet');
    await s.provisionDevice(plan(live));
    assert.ok((await s.purgeConsumedOwnershipTokens(at(2 * HOUR))) >= 1);
    assert.equal(await s.getOwnershipToken(live.tokenHash), undefined);
  });
});
