import { it } from 'node:test';
import assert from 'node:assert/strict';
import { CertfleetError } from '../errors.js';
import type { AuditInput, CertificateReplacement, NewCertificate, Store } from './index.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const DAY = 86_400_000;

await describeOnBothDialects('device replacement', ({ store, fresh }) => {
  /** A thing with two certificates (one active, one inactive), the first with two policies, the second with one of them. */
  async function device(s: Store) {
    const ca = caFixture();
    await s.insertCa(ca);
    const thing = uniqueName('pump');
    await s.createThing({ name: thing });
    const old1 = certificateFixture(ca.id, { thingName: thing });
    const old2 = certificateFixture(ca.id, { thingName: thing, status: 'inactive' });
    await s.insertCertificate(old1);
    await s.insertCertificate(old2);
    const [p1, p2] = [uniqueName('telemetry'), uniqueName('shadow')];
    await s.createPolicy(p1, { statements: [] });
    await s.createPolicy(p2, { statements: [] });
    await s.attachPolicy(p1, { type: 'certificate', id: old1.id });
    await s.attachPolicy(p2, { type: 'certificate', id: old1.id });
    await s.attachPolicy(p1, { type: 'certificate', id: old2.id });
    const replacement = certificateFixture(ca.id, { thingName: thing, createdAt: at(DAY) });
    return { ca, thing, old1, old2, policies: [p1, p2].sort(), replacement };
  }

  const entry = (thing: string): AuditInput => ({ actor: 'token:t1', action: 'thing.replace-certificate', target: `thing:${thing}` });

  function request(newCertificate: NewCertificate, revoke: CertificateReplacement['revoke']): CertificateReplacement {
    return { newCertificate, revoke, copyPolicies: true, at: at(DAY), actor: 'token:t1' };
  }

  it('inserts the new certificate, revokes the old ones, copies their policies and appends one audit entry', async () => {
    const s = store();
    const d = await device(s);
    const head = (await s.listAuditLog({ limit: 1 })).items[0]?.seq ?? 0;
    const result = await s.replaceCertificates(
      request(d.replacement, [
        { id: d.old2.id, expectedStatus: 'inactive', revocationReason: 'superseded' },
        { id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' },
      ]),
      entry(d.thing),
    );
    assert.deepEqual(result.revoked.map((c) => [c.id, c.status, c.revokedAt, c.revocationReason, c.thingName]), [
      [d.old2.id, 'revoked', at(DAY), 'superseded', d.thing],
      [d.old1.id, 'revoked', at(DAY), 'superseded', d.thing],
    ]);
    assert.deepEqual(result.policies, d.policies, 'each policy once');
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: d.replacement.id }), d.policies);
    assert.deepEqual(
      (await s.effectivePolicies(d.replacement.id)).map((p) => p.name),
      d.policies,
    );
    const stored = await s.getCertificate(d.replacement.id);
    assert.deepEqual([stored?.status, stored?.thingName], ['active', d.thing]);
    assert.deepEqual((await s.certificateHistory(d.replacement.id)).map((h) => [h.status, h.actor, h.at]), [['active', 'token:t1', at(DAY)]]);
    assert.deepEqual((await s.certificateHistory(d.old1.id)).map((h) => [h.status, h.reason, h.actor]), [
      ['active', null, 'system'],
      ['revoked', `replaced by ${d.replacement.id}`, 'token:t1'],
    ]);
    const entries = (await s.listAuditLog({ limit: 10, target: `thing:${d.thing}` })).items;
    assert.equal(entries.length, 1);
    assert.ok(entries[0]!.seq > head);
    assert.equal(entries[0]!.action, 'thing.replace-certificate');
    assert.equal((await s.verifyAuditLog()).ok, true);
  });

  it('is all or nothing: a status changed concurrently leaves every row as it was and no audit entry', async () => {
    const { store: s, exec } = await fresh();
    const d = await device(s);
    // Certificates are revoked in id order: the one whose status changed under
    // us is the last, so the first was already revoked when the replacement fails.
    const [first, last] = [d.old1, d.old2].sort((a, b) => (a.id < b.id ? -1 : 1)) as [NewCertificate, NewCertificate];
    const changed = last.status === 'active' ? 'inactive' : 'active';
    await s.setCertificateStatus(last.id, last.status, changed, { actor: 'someone', at: T0 });
    const before = {
      certificates: await exec('select id, status, revoked_at from certificates order by id'),
      history: await exec('select certificate_id, status from certificate_status_history order by id'),
      attachments: await exec('select policy_name, target_id from policy_attachments order by policy_name, target_id'),
      audit: await exec('select seq from audit_log'),
    };
    await rejectsWith(
      s.replaceCertificates(
        request(d.replacement, [
          { id: first.id, expectedStatus: first.status, revocationReason: 'superseded' },
          { id: last.id, expectedStatus: last.status, revocationReason: 'superseded' },
        ]),
        entry(d.thing),
      ),
      'invalid-state',
      new RegExp(`certificate ${last.id} is ${changed}, not ${last.status}`),
    );
    assert.deepEqual(
      {
        certificates: await exec('select id, status, revoked_at from certificates order by id'),
        history: await exec('select certificate_id, status from certificate_status_history order by id'),
        attachments: await exec('select policy_name, target_id from policy_attachments order by policy_name, target_id'),
        audit: await exec('select seq from audit_log'),
      },
      before,
    );
    assert.equal(await s.getCertificate(d.replacement.id), undefined);
    assert.equal((await s.verifyAuditLog()).ok, true);
  });

  it('refuses an old certificate that is not on the thing, unknown, or named twice; nothing is written', async () => {
    const s = store();
    const d = await device(s);
    const elsewhere = uniqueName('valve');
    await s.createThing({ name: elsewhere });
    const foreign = certificateFixture(d.ca.id, { thingName: elsewhere });
    await s.insertCertificate(foreign);
    const cases: Array<[CertificateReplacement, 'invalid-state' | 'not-found' | 'bad-request', RegExp]> = [
      [request(d.replacement, [{ id: foreign.id, expectedStatus: 'active', revocationReason: 'superseded' }]), 'invalid-state', /is not on thing/],
      [request(d.replacement, [{ id: 'f'.repeat(64), expectedStatus: 'active', revocationReason: 'superseded' }]), 'not-found', /not found/],
      [request(d.replacement, []), 'bad-request', /at least one/],
      [
        request(d.replacement, [
          { id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' },
          { id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' },
        ]),
        'bad-request',
        /named twice/,
      ],
      [request({ ...d.replacement, thingName: null }, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' }]), 'bad-request', /belong to a thing/],
      [request(d.replacement, [{ id: d.replacement.id, expectedStatus: 'active', revocationReason: 'superseded' }]), 'bad-request', /itself/],
      [request(d.replacement, [{ id: d.old1.id, expectedStatus: 'revoked', revocationReason: 'superseded' }]), 'bad-request', /already revoked/],
      [{ ...request(d.replacement, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' }]), actor: '' }, 'bad-request', /actor/],
      [
        request({ ...d.replacement, issuerId: 'ghost-ca' }, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' }]),
        'not-found',
        /issuer CA ghost-ca/,
      ],
    ];
    for (const [req, code, message] of cases) {
      await rejectsWith(s.replaceCertificates(req, entry(d.thing)), code, message);
    }
    assert.equal(await s.getCertificate(d.replacement.id), undefined);
    assert.equal((await s.getCertificate(d.old1.id))?.status, 'active');
    assert.equal((await s.getCertificate(foreign.id))?.status, 'active');
    assert.deepEqual((await s.listAuditLog({ limit: 10, target: `thing:${d.thing}` })).items, []);
  });

  it('refuses a new certificate whose serial exists, as a conflict, and keeps the old one in force', async () => {
    const s = store();
    const d = await device(s);
    await rejectsWith(
      s.replaceCertificates(
        request({ ...d.replacement, serial: d.old2.serial }, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' }]),
        entry(d.thing),
      ),
      'conflict',
    );
    assert.equal((await s.getCertificate(d.old1.id))?.status, 'active');
  });

  it('lets one of several concurrent replacements of the same certificate win', async () => {
    const s = store();
    const d = await device(s);
    const contenders = Array.from({ length: 4 }, (_, i) => certificateFixture(d.ca.id, { thingName: d.thing, createdAt: at(i) }));
    const results = await Promise.allSettled(
      contenders.map((c) =>
        s.replaceCertificates(request(c, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'superseded' }]), entry(d.thing)),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof CertfleetError && r.reason.code === 'invalid-state', String(r.reason));
    }
    assert.equal(await s.countCertificates({ thing: d.thing }), 3);
    assert.equal((await s.listAuditLog({ limit: 10, target: `thing:${d.thing}` })).items.length, 1);
  });

  it('copies nothing when told not to', async () => {
    const s = store();
    const d = await device(s);
    const result = await s.replaceCertificates(
      { ...request(d.replacement, [{ id: d.old1.id, expectedStatus: 'active', revocationReason: 'keyCompromise' }]), copyPolicies: false, note: 'stolen' },
    );
    assert.deepEqual(result.policies, []);
    assert.deepEqual(await s.policiesOfTarget({ type: 'certificate', id: d.replacement.id }), []);
    assert.equal(result.revoked[0]?.revocationReason, 'keyCompromise');
    assert.equal((await s.certificateHistory(d.old1.id)).at(-1)?.reason, 'stolen');
    assert.equal((await s.getCertificate(d.old2.id))?.status, 'inactive', 'only the named certificates are revoked');
  });
});
