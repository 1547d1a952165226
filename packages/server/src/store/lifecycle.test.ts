import { it } from 'node:test';
import assert from 'node:assert/strict';
import { CertfleetError } from '../errors.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

const DAY = 86_400_000;

await describeOnBothDialects('certificate lifecycle', ({ store }) => {
  async function issued(thingName: string | null = null) {
    const s = store();
    const ca = caFixture();
    await s.insertCa(ca);
    if (thingName !== null && (await s.getThing(thingName)) === undefined) await s.createThing({ name: thingName });
    const cert = certificateFixture(ca.id, { thingName, status: 'pending-activation' });
    await s.insertCertificate(cert, { actor: 'jitr', action: 'certificate.register', target: `certificate:${cert.id}` });
    return cert;
  }

  it('records the first status on insert and every compare-and-set change after it', async () => {
    const s = store();
    const cert = await issued();
    assert.deepEqual(await s.certificateHistory(cert.id), [
      { certificateId: cert.id, status: 'pending-activation', reason: null, actor: 'jitr', at: T0 },
    ]);
    const active = await s.setCertificateStatus(cert.id, 'pending-activation', 'active', { actor: 'hook', at: at(DAY) });
    assert.equal(active.status, 'active');
    const revoked = await s.setCertificateStatus(cert.id, 'active', 'revoked', {
      actor: 'admin', at: at(2 * DAY), reason: 'lost device', revocationReason: 'keyCompromise',
    });
    assert.deepEqual([revoked.status, revoked.revokedAt, revoked.revocationReason], ['revoked', at(2 * DAY), 'keyCompromise']);
    assert.deepEqual(await s.getCertificate(cert.id), revoked);
    // Leaving 'revoked' (a certificateHold lifted) clears the revocation.
    const back = await s.setCertificateStatus(cert.id, 'revoked', 'inactive', { actor: 'admin', at: at(3 * DAY) });
    assert.deepEqual([back.revokedAt, back.revocationReason], [null, null]);
    assert.deepEqual((await s.certificateHistory(cert.id)).map((h) => [h.status, h.actor, h.reason, h.at]), [
      ['pending-activation', 'jitr', null, T0],
      ['active', 'hook', null, at(DAY)],
      ['revoked', 'admin', 'lost device', at(2 * DAY)],
      ['inactive', 'admin', null, at(3 * DAY)],
    ]);
    assert.deepEqual(await s.certificateHistory('0'.repeat(64)), []);
  });

  it('refuses a change from a status the certificate no longer has', async () => {
    const s = store();
    const cert = await issued();
    await rejectsWith(s.setCertificateStatus(cert.id, 'active', 'revoked', { actor: 'a', at: T0 }), 'invalid-state', /is pending-activation, not active/);
    await rejectsWith(s.setCertificateStatus('ghost', 'active', 'revoked', { actor: 'a', at: T0 }), 'not-found');
    await rejectsWith(s.setCertificateStatus(cert.id, 'active', 'active', { actor: 'a', at: T0 }), 'bad-request');
    await rejectsWith(s.setCertificateStatus(cert.id, 'pending-activation', 'active', { actor: '', at: T0 }), 'bad-request');
    assert.equal((await s.certificateHistory(cert.id)).length, 1, 'nothing written by refused changes');
  });

  it('lets exactly one of several concurrent identical transitions win', async () => {
    const s = store();
    const cert = await issued();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => s.setCertificateStatus(cert.id, 'pending-activation', 'active', { actor: `n${i}`, at: T0 })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof CertfleetError && r.reason.code === 'invalid-state');
    }
    assert.equal((await s.certificateHistory(cert.id)).length, 2);
  });

  it('attaches a certificate to at most one thing; a thing holds several', async () => {
    const s = store();
    const [pump, valve] = [uniqueName('pump'), uniqueName('valve')];
    const first = await issued(pump);
    const second = await issued(null);
    await s.createThing({ name: valve });
    await s.attachCertificateToThing(second.id, pump);
    await s.attachCertificateToThing(second.id, pump); // same thing: no-op
    assert.equal(await s.countCertificates({ thing: pump }), 2);
    await rejectsWith(s.attachCertificateToThing(first.id, valve), 'invalid-state', new RegExp(`attached to thing ${pump}`));
    await rejectsWith(s.attachCertificateToThing(first.id, 'ghost-thing'), 'invalid-state');
    await s.detachCertificate(first.id);
    await s.detachCertificate(first.id); // idempotent
    await rejectsWith(s.attachCertificateToThing(first.id, 'ghost-thing'), 'not-found', /thing ghost-thing/);
    await rejectsWith(s.attachCertificateToThing('ghost', valve), 'not-found', /certificate ghost/);
    await rejectsWith(s.detachCertificate('ghost'), 'not-found');
    await s.attachCertificateToThing(first.id, valve);
    assert.equal((await s.getCertificate(first.id))?.thingName, valve);
  });
});

await describeOnBothDialects('CA provisioning settings', ({ store }) => {
  it('defaults to off with no template, updates fields independently, and clears with null', async () => {
    const s = store();
    const ca = caFixture();
    await s.insertCa(ca);
    assert.deepEqual(await s.getCaProvisioning(ca.id), { caId: ca.id, autoRegistration: false, provisioningTemplate: null });
    assert.deepEqual(await s.updateCa(ca.id, { autoRegistration: true }), { caId: ca.id, autoRegistration: true, provisioningTemplate: null });
    assert.deepEqual(await s.updateCa(ca.id, { provisioningTemplate: '{"Resources":{}}' }), {
      caId: ca.id, autoRegistration: true, provisioningTemplate: '{"Resources":{}}',
    });
    assert.deepEqual(await s.updateCa(ca.id, {}), await s.getCaProvisioning(ca.id));
    assert.deepEqual(await s.updateCa(ca.id, { autoRegistration: false, provisioningTemplate: null }), {
      caId: ca.id, autoRegistration: false, provisioningTemplate: null,
    });
    assert.deepEqual(await s.getCa(ca.id), ca, 'CaRecord unchanged by the new columns');
    assert.equal(await s.getCaProvisioning('ghost'), undefined);
    await rejectsWith(s.updateCa('ghost', { autoRegistration: true }), 'not-found');
    await rejectsWith(s.updateCa(ca.id, { autoRegistration: 'yes' as unknown as boolean }), 'bad-request');
  });
});
