import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { EventBus, type CertfleetEvents } from '../events/bus.js';
import { openStore, type Store } from '../store/index.js';
import { T0, at, caFixture, certificateFixture } from '../store/test-fixtures.js';
import { DEFAULT_REENROLL_GRACE_MS, parseGrace, ReenrollmentGrace } from './reenrollment-grace.js';

const DAY = 86_400_000;

describe('EST re-enrollment grace period', () => {
  let dir: string;
  let store: Store;
  let now = T0;
  const bus = new EventBus();
  const changes: Array<CertfleetEvents['certificate.status-changed']> = [];
  bus.on('certificate.status-changed', (e) => void changes.push(e));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'certfleet-grace-'));
    store = await openStore(join(dir, 'db.sqlite'), { now: () => now });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function reenrolled(grace: ReenrollmentGrace) {
    const ca = caFixture();
    await store.insertCa(ca);
    const old = certificateFixture(ca.id);
    const next = certificateFixture(ca.id);
    await store.insertCertificate(old);
    await store.insertReenrollment({ certificate: next, oldCertificateId: old.id, at: now, graceUntil: grace.graceUntil(now), actor: 'test' });
    return { old, next };
  }

  it('reads durations: 7 days by default', () => {
    assert.equal(DEFAULT_REENROLL_GRACE_MS, 7 * DAY);
    assert.deepEqual(['7d', '36h', '90m', '30s', '500ms'].map(parseGrace), [7 * DAY, 36 * 3_600_000, 90 * 60_000, 30_000, 500]);
    for (const bad of ['', '7', '7w', '-1d', 'd']) assert.throws(() => parseGrace(bad));
  });

  it('revokes the old certificate when the broker admits the new one, once', async () => {
    const grace = new ReenrollmentGrace({ store, bus, now: () => now });
    const { old, next } = await reenrolled(grace);
    grace.start(60_000);
    try {
      assert.equal(await grace.used(old.id), undefined, 'the old certificate is no re-enrolled one');
      assert.equal((await store.getCertificate(old.id))?.status, 'active');
      changes.length = 0;
      bus.emit('thing.connected', { thingName: null, certificateId: next.id, clientId: 'dev', remote: '127.0.0.1:1' });
      for (let i = 0; i < 50 && changes.length === 0; i++) await tick();
      assert.deepEqual(changes, [{ certificateId: old.id, from: 'active', to: 'revoked' }]);
      const revoked = await store.getCertificate(old.id);
      assert.deepEqual([revoked?.status, revoked?.revocationReason], ['revoked', 'superseded']);
      assert.equal(await grace.used(next.id), undefined, 'settled once');
      const log = await store.listAuditLog({ limit: 10, target: `certificate:${old.id}` });
      assert.ok(log.items.some((e) => e.action === 'certificate.revoke' && e.actor === 'system'));
    } finally {
      grace.stop();
    }
  });

  it('revokes it when the grace period ends, found by the sweep', async () => {
    now = T0;
    const grace = new ReenrollmentGrace({ store, bus, now: () => now, graceMs: DAY });
    const { old } = await reenrolled(grace);
    now = at(DAY - 1);
    assert.equal(await grace.sweep(), 0);
    assert.equal((await store.getCertificate(old.id))?.status, 'active');
    now = at(DAY);
    changes.length = 0;
    assert.equal(await grace.sweep(), 1);
    assert.equal((await store.getCertificate(old.id))?.status, 'revoked');
    assert.deepEqual(changes.map((c) => c.certificateId), [old.id]);
    assert.equal(await grace.sweep(), 0);
  });
});
