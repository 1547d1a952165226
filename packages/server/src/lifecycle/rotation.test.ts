import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName } from '@certfleet/pki';
import type { CertfleetEvents } from '../events/bus.js';
import { tokenActor } from '../registry/actor.js';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { renewalRejection } from './renewal-requests.js';
import { Published } from './test-published.js';

/*
 * Renewal and rotation campaigns on a wired node with an injected clock, on
 * SQLite and PostgreSQL. The broker is replaced by a recorder of what would
 * be published (topic, payload, retained), the one thing a campaign sends it.
 */

const DAY = 86_400_000;
const pgSchema = `certfleet_rotation_${randomBytes(6).toString('hex')}`;
const dialects = [
  { name: 'SQLite', open: (now: () => Date) => testNode({ now }), skip: undefined as string | undefined, cleanup: async () => {} },
  { name: 'PostgreSQL', open: (now: () => Date) => testNode({ database: PG_URL, schema: pgSchema, now }), skip: (await postgresUnreachable()).skip, cleanup: () => dropTestSchema(pgSchema) },
];

for (const d of dialects) {
  describe(`rotation on ${d.name}`, { skip: d.skip ?? false }, () => {
    let node: TestNode;
    let clock = new Date('2031-03-01T00:00:00.000Z');
    const items: Array<CertfleetEvents['campaign.item-changed']> = [];
    before(async () => {
      node = await d.open(() => clock);
      node.s.bus.on('campaign.item-changed', (e) => void items.push(e));
      await node.s.store.createPolicy('telemetry', { statements: [] });
    });
    after(async () => {
      await node?.close();
      await d.cleanup();
    });

    /** A thing with an active certificate (key made here) and policy telemetry on it. */
    async function device(name: string, validityDays = 365) {
      await node.s.store.createThing({ name });
      const issued = await node.s.issuance.withGeneratedKey({ thing: name, validityDays });
      await node.s.store.attachPolicy('telemetry', { type: 'certificate', id: issued.record.id });
      return issued.record;
    }

    const csrFor = (thing: string) => {
      const { privateKey, publicKey } = generateKeyPair('ec-p256');
      return buildCsrPem({ subject: parseName(`CN=${thing}`), privateKey, publicKey });
    };

    it('renews a certificate for the same thing, profile and policies, and retires the old one only after confirmation and grace', async () => {
      const r = node.s.rotation.renewals;
      const old = await device('r-1');
      const renewed = await r.renew(old.id, 'r-1', csrFor('r-1'));
      const fresh = await node.s.store.getCertificate(renewed.certificateId);
      assert.equal(fresh?.thingName, 'r-1');
      assert.equal(fresh?.profile, old.profile);
      assert.equal(fresh?.issuerId, old.issuerId);
      assert.deepEqual(await node.s.store.policiesOfTarget({ type: 'certificate', id: renewed.certificateId }), ['telemetry']);
      assert.equal(Certificate.fromPem(renewed.certificatePem).subject(), 'CN=r-1');
      assert.equal((await node.s.store.getCertificate(old.id))?.status, 'active', 'active until confirmed');

      // The old certificate cannot confirm; nor can the new one name another.
      assert.equal(renewalRejection(await r.confirm(old.id, 'r-1', old.id).catch((e: unknown) => e)).errorCode, 'NothingToConfirm');
      assert.equal(renewalRejection(await r.confirm(renewed.certificateId, 'r-1', old.id).catch((e: unknown) => e)).errorCode, 'NotTheNewCertificate');

      const ok = await r.confirm(renewed.certificateId, 'r-1', renewed.certificateId);
      assert.deepEqual(ok, { certificateId: renewed.certificateId, retiring: [old.id] });
      assert.equal((await node.s.store.getCertificate(old.id))?.status, 'inactive', 'deactivated at once');
      await r.sweep();
      assert.equal((await node.s.store.getCertificate(old.id))?.status, 'inactive', 'not revoked before the grace period');
      clock = new Date(clock.getTime() + 7 * DAY + 1000);
      await r.sweep();
      const retired = await node.s.store.getCertificate(old.id);
      assert.deepEqual([retired?.status, retired?.revocationReason], ['revoked', 'superseded']);
      assert.equal((await node.s.store.getCertificate(renewed.certificateId))?.status, 'active');
    });

    it('refuses a CSR with another subject or the same key, with a code', async () => {
      const old = await device('r-2');
      const other = await node.s.rotation.renewals.renew(old.id, 'r-2', csrFor('someone-else')).catch((e: unknown) => e);
      assert.deepEqual([renewalRejection(other).statusCode, renewalRejection(other).errorCode], [400, 'SubjectMismatch']);
      const notMine = await node.s.rotation.renewals.renew(old.id, 'r-1', csrFor('r-1')).catch((e: unknown) => e);
      assert.equal(renewalRejection(notMine).errorCode, 'NotYourThing');
      const garbage = await node.s.rotation.renewals.renew(old.id, 'r-2', 'not a csr').catch((e: unknown) => e);
      assert.equal(renewalRejection(garbage).statusCode, 400);
    });

    it('runs a campaign at the throttled rate, moves items through their states, and resumes after a restart of the runner', async () => {
      const c = node.s.rotation.campaigns;
      const olds = [];
      for (let i = 0; i < 5; i++) olds.push(await device(`c-${i}`, 20));
      const far = await device('c-far', 365);
      const pub = new Published();
      const view = await c.create(tokenActor('t1'), { expiringWithinDays: 30, ratePerMinute: 120, graceSeconds: 60 });
      const id = view.campaign.id;
      assert.equal(view.counts.pending, 5, 'the certificate expiring in a year is not a target');
      await c.start(pub);
      // 120 per minute over one-second ticks: 2 per tick.
      assert.equal(pub.sent.filter((m) => m.retain && m.payload).length, 2);
      await c.kick();
      assert.equal((await c.get(id)).counts.notified, 4);
      await c.stop();

      // A new runner (a restarted node) publishes again what is waiting, then goes on.
      const pub2 = new Published();
      await c.pause(tokenActor('t1'), id);
      await c.start(pub2);
      assert.equal(pub2.sent.length, 4, 'the retained renew-required of notified items, published again');
      await c.kick();
      assert.equal((await c.get(id)).counts.notified, 4, 'paused: nothing new');
      await c.resume(tokenActor('t1'), id);
      await c.kick();
      const counts = (await c.get(id)).counts;
      assert.deepEqual([counts.pending, counts.notified], [0, 5]);
      const first = olds[0]!;
      const topic = `$certfleet/things/c-0/certificate/renew-required`;
      assert.equal(JSON.parse(pub2.retained(topic) ?? pub.retained(topic)!).certificateId, first.id);

      // c-0 renews and confirms; c-1 renews and never confirms; the others do nothing.
      const r = node.s.rotation.renewals;
      const renewed0 = await r.renew(first.id, 'c-0', csrFor('c-0'));
      assert.equal(renewed0.campaignId, id);
      await r.renew(olds[1]!.id, 'c-1', csrFor('c-1'));
      await r.confirm(renewed0.certificateId, 'c-0', renewed0.certificateId);
      assert.equal(pub2.retained(topic), undefined, 'confirmed: renew-required cleared');
      clock = new Date(clock.getTime() + 61_000);
      await r.sweep();
      const after = (await c.get(id)).counts;
      assert.deepEqual([after.retired, after.issued, after.notified], [1, 1, 3]);
      assert.equal((await node.s.store.getCertificate(olds[1]!.id))?.status, 'active', 'never confirmed: the old certificate stays');
      assert.ok(items.some((e) => e.campaignId === id && e.certificateId === first.id && e.state === 'retired'));

      await c.cancel(tokenActor('t1'), id);
      const cancelled = await c.get(id);
      assert.equal(cancelled.campaign.status, 'cancelled');
      assert.equal(cancelled.counts.failed, 3);
      assert.equal(pub2.retained('$certfleet/things/c-2/certificate/renew-required'), undefined, 'cancel clears the retained message');
      assert.equal((await node.s.store.getCertificate(far.id))?.status, 'active');
      await c.stop();
    });

    it('refuses a campaign without a selection or matching nothing', async () => {
      const c = node.s.rotation.campaigns;
      await assert.rejects(c.create(tokenActor('t1'), {}), /needs a selection/);
      await assert.rejects(c.create(tokenActor('t1'), { expiringWithinDays: 1 }), /matches no active certificate/);
      await assert.rejects(c.create(tokenActor('t1'), { group: 'nope' }), /no thing group/);
    });
  });
}
