import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Store } from './index.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const MINUTE = 60_000;

await describeOnBothDialects('campaigns and renewals', ({ store }) => {
  /** A CA, a thing with one policy, and `n` active certificates on it. */
  async function fleetOf(s: Store, n: number) {
    const ca = caFixture();
    await s.insertCa(ca);
    const thing = uniqueName('meter');
    await s.createThing({ name: thing });
    const policy = uniqueName('telemetry');
    await s.createPolicy(policy, { statements: [] });
    const certs = [];
    for (let i = 0; i < n; i++) {
      const c = certificateFixture(ca.id, { thingName: thing });
      await s.insertCertificate(c);
      await s.attachPolicy(policy, { type: 'certificate', id: c.id });
      certs.push(c);
    }
    return { ca, thing, policy, certs };
  }

  const newCampaign = (overrides: { issuerId?: string | null } = {}) => ({
    id: randomUUID(),
    selection: { certificateIds: ['x'] },
    ratePerMinute: 60,
    graceSeconds: 7 * 86_400,
    issuerId: overrides.issuerId ?? null,
    createdBy: 'token:t1',
    createdAt: T0,
  });

  it('materialises one pending item per target, counts them per state and pages through them', async () => {
    const s = store();
    const f = await fleetOf(s, 3);
    const c = await s.createCampaign(newCampaign(), f.certs.map((x) => ({ certificateId: x.id, thingName: f.thing })), {
      actor: 'token:t1',
      action: 'campaign.create',
      target: 'campaign:x',
    });
    assert.equal(c.status, 'running');
    assert.deepEqual((await s.getCampaign(c.id))?.selection, { certificateIds: ['x'] });
    assert.deepEqual(await s.countCampaignItems(c.id), { pending: 3, notified: 0, issued: 0, confirmed: 0, retired: 0, failed: 0 });
    const first = await s.listCampaignItems(c.id, { limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(first.next);
    const rest = await s.listCampaignItems(c.id, { limit: 2, cursor: first.next! });
    assert.deepEqual([...first.items, ...rest.items].map((i) => i.certificateId), f.certs.map((x) => x.id).sort());
    assert.equal(rest.next, undefined);
    await rejectsWith(s.listCampaignItems(c.id, { limit: 2, cursor: 'nope' }), 'bad-request');
    assert.ok((await s.campaignsIn(['running'])).some((x) => x.id === c.id));
  });

  it('creates nothing when a target certificate does not exist', async () => {
    const s = store();
    const c = newCampaign();
    await rejectsWith(s.createCampaign(c, [{ certificateId: 'f'.repeat(64), thingName: null }]), 'not-found');
    assert.equal(await s.getCampaign(c.id), undefined);
  });

  it('changes a campaign status by compare-and-set', async () => {
    const s = store();
    const f = await fleetOf(s, 1);
    const c = await s.createCampaign(newCampaign(), [{ certificateId: f.certs[0]!.id, thingName: f.thing }]);
    assert.equal((await s.setCampaignStatus(c.id, ['running'], 'paused')).status, 'paused');
    await rejectsWith(s.setCampaignStatus(c.id, ['running'], 'paused'), 'invalid-state');
    await rejectsWith(s.setCampaignStatus(randomUUID(), ['running'], 'paused'), 'not-found');
  });

  it('moves an item only from the expected state and counts notifications in the throttle window', async () => {
    const s = store();
    const f = await fleetOf(s, 2);
    const c = await s.createCampaign(newCampaign(), f.certs.map((x) => ({ certificateId: x.id, thingName: f.thing })));
    const [a, b] = f.certs;
    assert.equal(await s.setCampaignItemState(c.id, a!.id, ['pending'], 'notified', { notifiedAt: at(MINUTE) }), true);
    assert.equal(await s.setCampaignItemState(c.id, a!.id, ['pending'], 'notified', { notifiedAt: at(MINUTE) }), false);
    assert.equal(await s.setCampaignItemState(c.id, b!.id, ['pending'], 'failed', { reason: 'certificate-not-active' }), true);
    assert.equal(await s.countNotifiedSince(c.id, at(0)), 1);
    assert.equal(await s.countNotifiedSince(c.id, at(2 * MINUTE)), 0);
    const failed = await s.listCampaignItems(c.id, { state: 'failed', limit: 10 });
    assert.deepEqual(failed.items.map((i) => [i.certificateId, i.reason]), [[b!.id, 'certificate-not-active']]);
    assert.equal((await s.openItemOfCertificate(a!.id))?.campaignId, c.id);
    assert.equal(await s.openItemOfCertificate(b!.id), undefined, 'a failed item is not open');
  });

  it('stores a renewal with the policies and the campaign item in one step, confirms it once and retires it', async () => {
    const s = store();
    const f = await fleetOf(s, 1);
    const old = f.certs[0]!;
    const c = await s.createCampaign(newCampaign(), [{ certificateId: old.id, thingName: f.thing }]);
    await s.setCampaignItemState(c.id, old.id, ['pending'], 'notified', { notifiedAt: at(0) });
    const renewed = certificateFixture(f.ca.id, { thingName: f.thing, createdAt: at(MINUTE) });
    assert.deepEqual(await s.insertRenewal(renewed, { replacesId: old.id, campaignId: c.id, graceSeconds: 60 }), { policies: [f.policy], superseded: [] });
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: renewed.id }), [f.policy]);
    const item = (await s.listCampaignItems(c.id, { limit: 1 })).items[0]!;
    assert.deepEqual([item.state, item.newCertificateId], ['issued', renewed.id]);
    assert.equal((await s.getRenewal(renewed.id))?.replacesId, old.id);

    const confirmed = await s.confirmRenewal(renewed.id, at(2 * MINUTE), at(3 * MINUTE));
    assert.deepEqual(confirmed.retireAt, at(3 * MINUTE));
    const again = await s.confirmRenewal(renewed.id, at(5 * MINUTE), at(6 * MINUTE));
    assert.deepEqual(again.confirmedAt, at(2 * MINUTE), 'the first confirmation stands');
    assert.equal((await s.countCampaignItems(c.id)).confirmed, 1);
    assert.ok((await s.confirmedWithActiveOld(1000)).some((r) => r.certificateId === renewed.id));
    assert.ok(!(await s.renewalsDue(at(2 * MINUTE), 1000)).some((r) => r.certificateId === renewed.id));
    assert.ok((await s.renewalsDue(at(3 * MINUTE), 1000)).some((r) => r.certificateId === renewed.id));

    await s.markRenewalRetired(renewed.id, at(4 * MINUTE));
    assert.deepEqual((await s.getRenewal(renewed.id))?.retiredAt, at(4 * MINUTE));
    assert.equal((await s.countCampaignItems(c.id)).retired, 1);
    assert.ok(!(await s.renewalsDue(at(9 * MINUTE), 1000)).some((r) => r.certificateId === renewed.id));
    await rejectsWith(s.confirmRenewal(old.id, at(0), at(0)), 'not-found');
  });

  it('revokes an earlier renewal never confirmed when the same certificate renews again, and refuses an old one no longer active', async () => {
    const s = store();
    const f = await fleetOf(s, 1);
    const old = f.certs[0]!;
    const c = await s.createCampaign(newCampaign(), [{ certificateId: old.id, thingName: f.thing }]);
    const first = certificateFixture(f.ca.id, { thingName: f.thing, createdAt: at(MINUTE) });
    await s.insertRenewal(first, { replacesId: old.id, campaignId: c.id, graceSeconds: 0 });
    const second = certificateFixture(f.ca.id, { thingName: f.thing, createdAt: at(2 * MINUTE) });
    const r = await s.insertRenewal(second, { replacesId: old.id, campaignId: c.id, graceSeconds: 0, actor: `certificate:${old.id}` });
    assert.deepEqual(r.superseded.map((x) => [x.id, x.status, x.revocationReason]), [[first.id, 'revoked', 'superseded']]);
    assert.equal((await s.getCertificate(first.id))?.status, 'revoked');
    assert.equal((await s.getCertificate(old.id))?.status, 'active', 'the old certificate stays until a confirmation');
    const item = (await s.listCampaignItems(c.id, { limit: 1 })).items[0]!;
    assert.deepEqual([item.state, item.newCertificateId], ['issued', second.id]);
    assert.equal((await s.itemOfNewCertificate(second.id))?.certificateId, old.id);
    assert.ok(!(await s.renewalsDue(at(9 * MINUTE), 1000)).some((x) => x.certificateId === first.id), 'the superseded renewal never retires anything');

    // Confirmed: a third renewal of the old certificate, now inactive, is refused.
    await s.confirmRenewal(second.id, at(3 * MINUTE), at(3 * MINUTE));
    await s.setCertificateStatus(old.id, 'active', 'inactive', { actor: 'system', at: at(3 * MINUTE), reason: 'renewed' });
    await rejectsWith(s.insertRenewal(certificateFixture(f.ca.id, { thingName: f.thing }), { replacesId: old.id, campaignId: null, graceSeconds: 0 }), 'invalid-state');
    assert.equal((await s.getCertificate(second.id))?.status, 'active', 'a confirmed renewal is never superseded');
  });

  it('keeps a campaign deadline, and moves an item to the certificate that renewed it', async () => {
    const s = store();
    const f = await fleetOf(s, 1);
    const c = await s.createCampaign({ ...newCampaign(), deadlineAt: at(86_400_000) }, [{ certificateId: f.certs[0]!.id, thingName: f.thing }]);
    assert.deepEqual(c.deadlineAt, at(86_400_000));
    assert.deepEqual((await s.getCampaign(c.id))?.deadlineAt, at(86_400_000));
    assert.equal((await s.getCampaign((await s.createCampaign(newCampaign(), [{ certificateId: f.certs[0]!.id, thingName: f.thing }])).id))?.deadlineAt, null);
    const renewed = certificateFixture(f.ca.id, { thingName: f.thing });
    await s.insertCertificate(renewed);
    assert.equal(await s.setCampaignItemState(c.id, f.certs[0]!.id, ['pending'], 'issued', { newCertificateId: renewed.id }), true);
    const item = await s.itemOfNewCertificate(renewed.id);
    assert.deepEqual([item?.campaignId, item?.state], [c.id, 'issued']);
    assert.equal(await s.itemOfNewCertificate('0'.repeat(64)), undefined);
  });

  it("keeps each CA's renewal-after-expiry window, off by default, with an audit entry", async () => {
    const s = store();
    const ca = caFixture();
    await s.insertCa(ca);
    assert.equal(await s.renewAfterExpiryDays(ca.id), 0);
    await s.setRenewAfterExpiryDays(ca.id, 14, { actor: 'token:t1', action: 'ca.set-renew-after-expiry', target: `ca:${ca.id}`, details: { days: 14 } });
    assert.equal(await s.renewAfterExpiryDays(ca.id), 14);
    assert.equal(await s.renewAfterExpiryDays('f'.repeat(64)), undefined);
    await rejectsWith(s.setRenewAfterExpiryDays('f'.repeat(64), 1), 'not-found');
    await rejectsWith(s.setRenewAfterExpiryDays(ca.id, -1), 'bad-request');
    const log = await s.listAuditLog({ target: `ca:${ca.id}`, limit: 10 });
    assert.deepEqual(log.items.map((e) => e.action), ['ca.set-renew-after-expiry']);
  });

  it('rolls the new certificate back when the link cannot be stored', async () => {
    const s = store();
    const f = await fleetOf(s, 1);
    const renewed = certificateFixture(f.ca.id, { thingName: f.thing });
    await rejectsWith(s.insertRenewal(renewed, { replacesId: 'e'.repeat(64), campaignId: null, graceSeconds: 0 }), 'not-found');
    assert.equal(await s.getCertificate(renewed.id), undefined);
  });
});
