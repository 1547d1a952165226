import { it } from 'node:test';
import assert from 'node:assert/strict';
import { CertfleetError } from '../errors.js';
import type { AutoRegistration } from './records.js';
import type { Store } from './store.js';
import { caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const DOC = { statements: [{ effect: 'allow', actions: ['connect'], resources: ['*'] }] };
const entry = (id: string) => ({ actor: 'system', action: 'certificate.jitp', target: `certificate:${id}` });

async function setUp(s: Store) {
  const ca = caFixture();
  await s.insertCa(ca);
  const policy = uniqueName('pol');
  const group = uniqueName('grp');
  await s.createPolicy(policy, DOC);
  await s.createGroup({ name: group });
  return { caId: ca.id, policy, group };
}

const audits = async (s: Store, target: string) => (await s.listAuditLog({ limit: 100, target })).items.length;

await describeOnBothDialects('auto-registration', ({ fresh }) => {
  it('creates the thing, the active certificate, its policies and groups, with one audit entry', async () => {
    const { store: s } = await fresh();
    const { caId, policy, group } = await setUp(s);
    const thing = uniqueName('dev');
    const c = certificateFixture(caId, { thingName: thing, profile: 'jitp' });
    const r = await s.autoRegisterCertificate({ certificate: c, thingAttributes: { site: 'paris' }, groups: [group], policies: [policy] }, entry(c.id));
    assert.deepEqual([r.registered, r.thingCreated, r.certificate.status, r.certificate.thingName], [true, true, 'active', thing]);
    assert.deepEqual((await s.getThing(thing))?.attributes, { site: 'paris' });
    assert.deepEqual((await s.groupsOfThing(thing)).map((g) => g.name), [group]);
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: c.id }), [policy]);
    assert.deepEqual((await s.certificateHistory(c.id)).map((h) => [h.status, h.actor]), [['active', 'system']]);
    assert.equal(await audits(s, `certificate:${c.id}`), 1);

    // Again: already registered, nothing written.
    const again = await s.autoRegisterCertificate({ certificate: c, groups: [group], policies: [policy] }, entry(c.id));
    assert.deepEqual([again.registered, again.certificate.id], [false, c.id]);
    assert.equal(await audits(s, `certificate:${c.id}`), 1);
  });

  it("reuses an existing thing as it is and skips groups it is already in", async () => {
    const { store: s } = await fresh();
    const { caId, policy, group } = await setUp(s);
    const thing = (await s.createThing({ name: uniqueName('dev'), attributes: { owner: 'me' } })).name;
    await s.addThingToGroup(group, thing);
    const c = certificateFixture(caId, { thingName: thing });
    const r = await s.autoRegisterCertificate({ certificate: c, thingAttributes: { owner: 'template' }, groups: [group], policies: [policy] });
    assert.deepEqual([r.registered, r.thingCreated], [true, false]);
    assert.deepEqual((await s.getThing(thing))?.attributes, { owner: 'me' });
  });

  it('registers pending-activation without a thing (JITR)', async () => {
    const { store: s } = await fresh();
    const { caId } = await setUp(s);
    const c = certificateFixture(caId, { status: 'pending-activation', profile: 'jitr' });
    const r = await s.autoRegisterCertificate({ certificate: c, groups: [], policies: [] });
    assert.deepEqual([r.certificate.status, r.certificate.thingName, r.thingCreated], ['pending-activation', null, false]);
    await rejectsWith(s.autoRegisterCertificate({ certificate: certificateFixture(caId), groups: ['g'], policies: [] }), 'bad-request');
  });

  it('writes nothing when a policy or group is missing', async () => {
    const { store: s } = await fresh();
    const { caId, policy, group } = await setUp(s);
    const cases: Array<[Omit<AutoRegistration, 'certificate'>, RegExp]> = [
      [{ groups: [group], policies: ['no-such-policy'] }, /policy no-such-policy/],
      [{ groups: ['no-such-group'], policies: [policy] }, /group no-such-group/],
    ];
    for (const [reg, message] of cases) {
      const thing = uniqueName('dev');
      const c = certificateFixture(caId, { thingName: thing });
      await rejectsWith(s.autoRegisterCertificate({ ...reg, certificate: c }, entry(c.id)), 'not-found', message);
      assert.equal(await s.getCertificate(c.id), undefined);
      assert.equal(await s.getThing(thing), undefined, 'the thing rolled back with the rest');
      assert.equal(await audits(s, `certificate:${c.id}`), 0);
    }
  });

  it('two first connections at once: one registration commits, the other sees it or gets conflict', async () => {
    const { store: s } = await fresh();
    const { caId, policy, group } = await setUp(s);
    const thing = uniqueName('dev');
    const c = certificateFixture(caId, { thingName: thing });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => s.autoRegisterCertificate({ certificate: c, groups: [group], policies: [policy] }, entry(c.id))),
    );
    const won = results.filter((r) => r.status === 'fulfilled' && r.value.registered);
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof CertfleetError && r.reason.code === 'conflict', String(r.reason));
    }
    assert.equal((await s.listThings({ limit: 100 })).items.filter((t) => t.name === thing).length, 1);
    assert.equal(await audits(s, `certificate:${c.id}`), 1);
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: c.id }), [policy]);
  });
});
