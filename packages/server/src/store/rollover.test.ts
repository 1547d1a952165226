import { it } from 'node:test';
import assert from 'node:assert/strict';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

await describeOnBothDialects('issuer rotation and trust bundle store', ({ store, fresh }) => {
  it('keeps cross certificates of a CA, oldest first, and refuses a duplicate', async () => {
    const s = store();
    const oldRoot = caFixture();
    const newRoot = caFixture();
    await s.insertCa(oldRoot);
    await s.insertCa(newRoot);
    const cross = { id: uniqueName('x'), caId: newRoot.id, signedBy: oldRoot.id, serial: '0a', der: Buffer.from([1, 2, 3]), notBefore: T0, notAfter: at(86_400_000), createdAt: T0 };
    await s.insertCrossCertificate(cross, { actor: 'admin', action: 'ca.cross-sign', target: `ca:${newRoot.id}` });
    await s.insertCrossCertificate({ ...cross, id: uniqueName('x'), createdAt: at(1000) });
    const got = await s.crossCertificatesOf(newRoot.id);
    assert.deepEqual(got[0], cross);
    assert.equal(got.length, 2);
    assert.deepEqual(await s.crossCertificatesOf(oldRoot.id), []);
    await rejectsWith(s.insertCrossCertificate(cross), 'conflict');
    await rejectsWith(s.insertCrossCertificate({ ...cross, id: uniqueName('x'), caId: 'ca-missing' }), 'not-found');
  });

  it('counts and pages the active certificates under a set of issuers', async () => {
    const s = store();
    const a = caFixture();
    const b = caFixture();
    await s.insertCa(a);
    await s.insertCa(b);
    for (let i = 0; i < 3; i++) await s.insertCertificate(certificateFixture(a.id));
    for (let i = 0; i < 2; i++) await s.insertCertificate(certificateFixture(b.id));
    await s.insertCertificate(certificateFixture(b.id, { status: 'revoked' }));
    assert.equal(await s.countDependents([a.id, b.id]), 5);
    assert.equal(await s.countDependents([]), 0);
    for (const limit of [1, 2, 3, 5, 10]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const p = await s.listDependents([a.id, b.id], { limit, ...(cursor ? { cursor } : {}) });
        seen.push(...p.items.map((c) => c.id));
        cursor = p.next;
      } while (cursor);
      assert.equal(new Set(seen).size, 5, `limit ${limit}`);
      assert.equal(seen.length, 5, `limit ${limit}`);
    }
    await rejectsWith(s.listDependents([a.id], { limit: 1, cursor: 'bogus' }), 'bad-request');
  });

  it('versions the bundle, keeps the highest acknowledgement, and counts things still pending', async () => {
    const { store: s } = await fresh();
    assert.equal(await s.latestTrustBundle(), undefined);
    const ca = caFixture();
    await s.insertCa(ca);
    const v1 = await s.appendTrustBundleVersion(0, ['r1']);
    assert.equal(v1.version, 1);
    await rejectsWith(s.appendTrustBundleVersion(0, ['r2']), 'conflict');
    const v2 = await s.appendTrustBundleVersion(1, ['r1', 'r2'], { actor: 'admin', action: 'trust.add-root', target: 'trust-bundle' });
    assert.deepEqual((await s.latestTrustBundle())?.roots, ['r1', 'r2']);
    assert.deepEqual((await s.trustBundleVersions()).map((v) => v.version), [1, 2]);
    assert.equal(v2.version, 2);

    for (const name of ['t1', 't2', 't3']) {
      await s.createThing({ name });
      await s.insertCertificate(certificateFixture(ca.id, { thingName: name }));
    }
    // A thing with only a revoked certificate needs no bundle.
    await s.createThing({ name: 't4' });
    await s.insertCertificate(certificateFixture(ca.id, { thingName: 't4', status: 'revoked' }));
    assert.equal(await s.countThingsWithActiveCertificates(), 3);
    assert.deepEqual((await s.thingsWithActiveCertificates({ limit: 2 })).items, ['t1', 't2']);

    assert.equal(await s.acknowledgeTrustBundle('t1', 2, T0), 2);
    assert.equal(await s.acknowledgeTrustBundle('t1', 1, T0), 2, 'an older ack never lowers it');
    assert.equal(await s.acknowledgeTrustBundle('t2', 1, T0), 1);
    assert.equal(await s.countThingsNotAcknowledging([2]), 2);
    assert.equal(await s.countThingsNotAcknowledging([1, 2]), 1);
    const first = await s.listThingsNotAcknowledging([2], { limit: 1 });
    assert.deepEqual(first.items, ['t2']);
    assert.deepEqual((await s.listThingsNotAcknowledging([2], { limit: 1, cursor: first.next! })).items, ['t3']);
  });
});
