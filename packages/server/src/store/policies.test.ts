import { it } from 'node:test';
import assert from 'node:assert/strict';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const doc = (resource: string) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: resource }] });

await describeOnBothDialects('policies', ({ store, fresh }) => {
  it('creates version 1 as the default and reads it back', async () => {
    let now = T0;
    const { store: s } = await fresh({ now: () => now });
    const created = await s.createPolicy('telemetry', doc('a'));
    const expected = {
      name: 'telemetry', defaultVersion: 1, versions: [{ version: 1, createdAt: T0, isDefault: true }],
      document: doc('a'), createdAt: T0, updatedAt: T0,
    };
    assert.deepEqual(created, expected);
    assert.deepEqual(await s.getPolicy('telemetry'), expected);
    assert.equal(await s.getPolicy('ghost'), undefined);
    await rejectsWith(s.createPolicy('telemetry', doc('b')), 'conflict');
    now = at(1000);
    await s.createPolicyVersion('telemetry', doc('b'));
    assert.deepEqual((await s.getPolicy('telemetry'))?.updatedAt, at(1000));
  });

  it('keeps at most 5 versions, never deletes the default, never reuses a number', async () => {
    const s = store();
    const name = uniqueName('pol');
    await s.createPolicy(name, doc('v1'));
    for (let v = 2; v <= 5; v += 1) {
      const version = await s.createPolicyVersion(name, doc(`v${v}`));
      assert.deepEqual([version.version, version.isDefault, version.document], [v, false, doc(`v${v}`)]);
    }
    await rejectsWith(s.createPolicyVersion(name, doc('v6')), 'invalid-state', /5 versions/);
    await rejectsWith(s.deletePolicyVersion(name, 1), 'invalid-state', /default/);
    await s.deletePolicyVersion(name, 3);
    await rejectsWith(s.deletePolicyVersion(name, 3), 'not-found');
    const six = await s.createPolicyVersion(name, doc('v6'), { setDefault: true });
    assert.deepEqual([six.version, six.isDefault], [6, true]);
    const policy = await s.getPolicy(name);
    assert.deepEqual(policy?.versions.map((v) => [v.version, v.isDefault]), [[1, false], [2, false], [4, false], [5, false], [6, true]]);
    assert.deepEqual(policy?.document, doc('v6'));
    await s.setDefaultPolicyVersion(name, 2);
    assert.deepEqual((await s.getPolicy(name))?.document, doc('v2'));
    assert.deepEqual((await s.getPolicyVersion(name, 6))?.isDefault, false);
    assert.equal(await s.getPolicyVersion(name, 3), undefined);
    await rejectsWith(s.setDefaultPolicyVersion(name, 3), 'not-found', /no version 3/);
    await rejectsWith(s.setDefaultPolicyVersion('ghost', 1), 'not-found', /policy ghost/);
    await rejectsWith(s.createPolicyVersion('ghost', doc('x')), 'not-found');
    await rejectsWith(s.setDefaultPolicyVersion(name, 0), 'bad-request');
    await rejectsWith(s.createPolicy(uniqueName('p'), [] as unknown as Record<string, unknown>), 'bad-request');
  });

  it('lets only as many concurrent new versions through as there is room for', async () => {
    const s = store();
    const name = uniqueName('race');
    await s.createPolicy(name, doc('v1'));
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.createPolicyVersion(name, doc(`c${i}`))));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.version] : []));
    assert.deepEqual(won.sort(), [2, 3, 4, 5]);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'invalid-state');
    assert.equal((await s.getPolicy(name))?.versions.length, 5);
  });

  it('lists policies by name across pages', async () => {
    const { store: s } = await fresh();
    for (const name of ['b', 'a', 'c']) await s.createPolicy(name, doc(name));
    const first = await s.listPolicies({ limit: 2 });
    const second = await s.listPolicies({ limit: 2, cursor: first.next });
    assert.deepEqual([...first.items, ...second.items].map((p) => [p.name, p.defaultVersion]), [['a', 1], ['b', 1], ['c', 1]]);
  });

  it('attaches to certificates and groups, lists attachments, and refuses to delete an attached policy', async () => {
    const s = store();
    const ca = caFixture();
    await s.insertCa(ca);
    const cert = certificateFixture(ca.id);
    await s.insertCertificate(cert);
    const group = uniqueName('grp');
    await s.createGroup({ name: group });
    const name = uniqueName('pol');
    await s.createPolicy(name, doc('x'));
    await s.attachPolicy(name, { type: 'certificate', id: cert.id });
    await s.attachPolicy(name, { type: 'group', id: group });
    await rejectsWith(s.attachPolicy(name, { type: 'group', id: group }), 'conflict');
    await rejectsWith(s.attachPolicy(name, { type: 'group', id: 'ghost' }), 'not-found', /group ghost/);
    await rejectsWith(s.attachPolicy(name, { type: 'certificate', id: 'ghost' }), 'not-found', /certificate ghost/);
    await rejectsWith(s.attachPolicy('ghost', { type: 'group', id: group }), 'not-found', /policy ghost/);
    await rejectsWith(s.attachPolicy(name, { type: 'thing', id: 'x' } as never), 'bad-request');
    const first = await s.listAttachments(name, { limit: 1 });
    const second = await s.listAttachments(name, { limit: 1, cursor: first.next });
    assert.deepEqual([...first.items, ...second.items].map((a) => a.target), [{ type: 'certificate', id: cert.id }, { type: 'group', id: group }]);
    assert.equal(second.next, undefined);
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: cert.id }), [name]);
    await rejectsWith(s.deletePolicy(name), 'invalid-state', /attached/);
    await s.detachPolicy(name, { type: 'certificate', id: cert.id });
    await rejectsWith(s.detachPolicy(name, { type: 'certificate', id: cert.id }), 'not-found', /not attached/);
    await s.detachPolicy(name, { type: 'group', id: group });
    await s.deletePolicy(name);
    assert.equal(await s.getPolicy(name), undefined);
    await rejectsWith(s.deletePolicy(name), 'not-found');
    await rejectsWith(s.listAttachments(name, { limit: 1 }), 'not-found');
  });

  it('effectivePolicies: the certificate’s own, its thing’s groups’ and their ancestors’, default versions only', async () => {
    const s = store();
    const ca = caFixture();
    await s.insertCa(ca);
    const thing = uniqueName('pump');
    await s.createThing({ name: thing });
    const [root, mid, leaf, other] = ['root', 'mid', 'leaf', 'other'].map(uniqueName) as [string, string, string, string];
    await s.createGroup({ name: root });
    await s.createGroup({ name: mid, parent: root });
    await s.createGroup({ name: leaf, parent: mid });
    await s.createGroup({ name: other, parent: root });
    await s.addThingToGroup(leaf, thing);
    const cert = certificateFixture(ca.id, { thingName: thing });
    const bare = certificateFixture(ca.id);
    await s.insertCertificate(cert);
    await s.insertCertificate(bare);
    const p = (label: string) => `${label}-${root}`;
    const attach: Array<[string, { type: 'certificate' | 'group'; id: string }]> = [
      [p('a-cert'), { type: 'certificate', id: cert.id }],
      [p('b-root'), { type: 'group', id: root }],
      [p('c-mid'), { type: 'group', id: mid }],
      [p('d-other'), { type: 'group', id: other }],
      [p('e-bare'), { type: 'certificate', id: bare.id }],
    ];
    for (const [name, target] of attach) {
      await s.createPolicy(name, doc(name));
      await s.attachPolicy(name, target);
    }
    await s.attachPolicy(p('b-root'), { type: 'group', id: leaf }); // reached twice: listed once
    await s.createPolicyVersion(p('c-mid'), doc('mid-v2'), { setDefault: true });
    await s.createPolicyVersion(p('a-cert'), doc('not-default'));
    assert.deepEqual(await s.effectivePolicies(cert.id), [
      { name: p('a-cert'), version: 1, document: doc(p('a-cert')) },
      { name: p('b-root'), version: 1, document: doc(p('b-root')) },
      { name: p('c-mid'), version: 2, document: doc('mid-v2') },
    ]);
    assert.deepEqual((await s.effectivePolicies(bare.id)).map((e) => e.name), [p('e-bare')]);
    assert.deepEqual(await s.effectivePolicies('0'.repeat(64)), []);
  });
});
