import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, decodePem, generateKeyPair, parseName } from '@certfleet/pki';
import type { CertfleetEvents } from '../events/bus.js';
import { EstEnrollment } from '../provisioning/est.js';
import { tokenActor } from '../registry/actor.js';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { ExpiredCertificateRefusal } from './renewal-after-expiry.js';
import { RenewalRefusal } from './renewal.js';
import { Published } from './test-published.js';

/*
 * Renewal after expiry, campaign deadlines, renewing twice before confirming,
 * and EST re-enrollment counted by a campaign, on a wired node with an
 * injected clock, on SQLite and PostgreSQL. The broker is a recorder of what
 * would be published.
 */

const DAY = 86_400_000;
const pgSchema = `certfleet_renewal_${randomBytes(6).toString('hex')}`;
const dialects = [
  { name: 'SQLite', open: (now: () => Date) => testNode({ now }), skip: undefined as string | undefined, cleanup: async () => {} },
  { name: 'PostgreSQL', open: (now: () => Date) => testNode({ database: PG_URL, schema: pgSchema, now }), skip: (await postgresUnreachable()).skip, cleanup: () => dropTestSchema(pgSchema) },
];

/** The reason a refusal carries, or the error code of anything else. */
const why = (err: unknown): string =>
  err instanceof RenewalRefusal || err instanceof ExpiredCertificateRefusal ? err.reason : err instanceof Error ? `${(err as { code?: string }).code}` : String(err);

for (const d of dialects) {
  describe(`renewal after expiry, deadlines and EST in campaigns on ${d.name}`, { skip: d.skip ?? false }, () => {
    let node: TestNode;
    let clock = new Date('2031-06-01T00:00:00.000Z');
    const statusEvents: Array<CertfleetEvents['certificate.status-changed']> = [];
    before(async () => {
      node = await d.open(() => clock);
      node.s.bus.on('certificate.status-changed', (e) => void statusEvents.push(e));
    });
    after(async () => {
      await node?.close();
      await d.cleanup();
    });

    async function device(name: string, validityDays = 365) {
      await node.s.store.createThing({ name });
      const issued = await node.s.issuance.withGeneratedKey({ thing: name, validityDays });
      return { record: issued.record, key: issued.privateKeyPem, chain: [issued.record.der, ...(await node.s.authorities.chain(issued.record.issuerId)).map((c) => c.der)] };
    }
    const csrFor = (cn: string) => {
      const { privateKey, publicKey } = generateKeyPair('ec-p256');
      return buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey });
    };

    it('renews an expired certificate only within its CA window, after checking it as of its expiry', async () => {
      const x = node.s.rotation.afterExpiry;
      const a = await device('ax-1', 1);
      const b = await device('ax-2', 1);
      const c = await device('ax-3', 1);
      await node.s.revoker.revoke(tokenActor('t1'), c.record.id, 'keyCompromise');
      const chain = (dev: { chain: Uint8Array[] }) => dev.chain.map((der) => Buffer.from(der));

      assert.equal(why(await x.renew(chain(a), csrFor('ax-1')).catch((e: unknown) => e)), 'NotExpired');
      clock = new Date(clock.getTime() + 3 * DAY);
      assert.equal(why(await x.renew(chain(a), csrFor('ax-1')).catch((e: unknown) => e)), 'RenewalAfterExpiryDisabled', 'off by default');
      assert.equal(await x.setDays(tokenActor('t1'), a.record.issuerId, 1), 1);
      assert.equal(why(await x.renew(chain(a), csrFor('ax-1')).catch((e: unknown) => e)), 'ExpiredTooLongAgo');
      await assert.rejects(x.setDays(tokenActor('t1'), a.record.issuerId, -1), /whole number/);
      await x.setDays(tokenActor('t1'), 'issuing', 14);
      assert.equal(await x.days(a.record.issuerId), 14);

      const renewed = await x.renew(chain(a), csrFor('ax-1'));
      const fresh = await node.s.store.getCertificate(renewed.certificateId);
      assert.deepEqual([fresh?.thingName, fresh?.status], ['ax-1', 'active']);
      assert.ok(Certificate.fromPem(renewed.certificatePem).notAfter() > clock, 'valid from now on');
      assert.equal((await node.s.store.getRenewal(renewed.certificateId))?.replacesId, a.record.id);
      // Confirmed like any renewal: the expired one is deactivated and cannot renew again.
      await node.s.rotation.renewals.confirm(renewed.certificateId, 'ax-1', renewed.certificateId);
      assert.equal(why(await x.renew(chain(a), csrFor('ax-1')).catch((e: unknown) => e)), 'inactive-certificate');

      assert.equal(why(await x.renew(chain(c), csrFor('ax-3')).catch((e: unknown) => e)), 'revoked-certificate');
      assert.equal(why(await x.renew(chain(b), csrFor('someone-else')).catch((e: unknown) => e)), 'SubjectMismatch');
      const privateKey = createPrivateKey(b.key);
      assert.equal(why(await x.renew(chain(b), buildCsrPem({ subject: parseName('CN=ax-2'), privateKey, publicKey: createPublicKey(privateKey) })).catch((e: unknown) => e)), 'KeyReused');
      assert.equal(why(await x.renew(chain(b), 'not a csr').catch((e: unknown) => e)), 'malformed-pem');
      assert.equal(why(await x.renew([], csrFor('ax-2')).catch((e: unknown) => e)), 'unauthorized');
      assert.equal(why(await x.renew([Buffer.from('not a certificate')], csrFor('ax-2')).catch((e: unknown) => e)), 'untrusted-chain');
      assert.equal((await node.s.store.getCertificate(b.record.id))?.status, 'active', 'refusals change nothing');
    });

    it('revokes the earlier new certificate when a device renews again before confirming', async () => {
      const old = await device('twice');
      const r = node.s.rotation.renewals;
      const first = await r.renew(old.record.id, 'twice', csrFor('twice'));
      const second = await r.renew(old.record.id, 'twice', csrFor('twice'));
      const gone = await node.s.store.getCertificate(first.certificateId);
      assert.deepEqual([gone?.status, gone?.revocationReason], ['revoked', 'superseded']);
      assert.ok(statusEvents.some((e) => e.certificateId === first.certificateId && e.to === 'revoked'), 'the broker, CRL and OCSP are told');
      assert.equal((await node.s.store.getCertificate(second.certificateId))?.status, 'active');
      assert.equal((await node.s.store.getCertificate(old.record.id))?.status, 'active');
    });

    it('gives up on devices that have not confirmed by the deadline, keeping their old certificate, and completes', async () => {
      const c = node.s.rotation.campaigns;
      const quiet = await device('dl-quiet');
      const halfway = await device('dl-halfway');
      const pub = new Published();
      const view = await c.create(tokenActor('t1'), { certificateIds: [quiet.record.id, halfway.record.id], ratePerMinute: 600, deadlineDays: 1 });
      assert.deepEqual(view.campaign.deadlineAt, new Date(clock.getTime() + DAY));
      await assert.rejects(c.create(tokenActor('t1'), { certificateIds: [quiet.record.id], deadlineDays: 0 }), /deadlineDays/);
      await c.start(pub);
      await node.s.rotation.renewals.renew(halfway.record.id, 'dl-halfway', csrFor('dl-halfway'));
      assert.deepEqual([(await c.get(view.campaign.id)).counts.notified, (await c.get(view.campaign.id)).counts.issued], [1, 1]);
      await c.stop();

      clock = new Date(clock.getTime() + DAY + 1000);
      const pub2 = new Published();
      await c.start(pub2);
      const done = await c.get(view.campaign.id);
      assert.equal(done.campaign.status, 'completed');
      assert.equal(done.counts.failed, 2);
      const items = (await c.items(view.campaign.id, { limit: 10 })).items;
      assert.deepEqual(items.map((i) => i.reason), ['deadline', 'deadline']);
      for (const t of ['dl-quiet', 'dl-halfway']) {
        assert.equal(pub2.retained(`$certfleet/things/${t}/certificate/renew-required`), undefined, `${t}: nothing retained after the deadline`);
      }
      assert.ok(pub2.sent.some((m) => m.topic === '$certfleet/things/dl-quiet/certificate/renew-required' && m.retain && m.payload === ''), 'cleared');
      assert.equal((await node.s.store.getCertificate(quiet.record.id))?.status, 'active');
      assert.equal((await node.s.store.getCertificate(halfway.record.id))?.status, 'active');
      await c.stop();
    });

    it('counts an EST re-enrollment in the campaign: issued, confirmed at first use, retired with the old certificate', async () => {
      const c = node.s.rotation.campaigns;
      const old = await device('est-1');
      const pub = new Published();
      const view = await c.create(tokenActor('t1'), { certificateIds: [old.record.id], ratePerMinute: 600 });
      await c.start(pub);
      const est = new EstEnrollment({ authorities: node.s.authorities, issuance: node.s.issuance, certificates: node.s.certificates, reenrollments: node.s.store, grace: node.s.est.grace, bus: node.s.bus, now: node.s.now });
      const csr = decodePem(csrFor('est-1'), 'CERTIFICATE REQUEST');
      const first = await est.reenroll({ id: `certificate:${old.record.id}` }, old.record.id, Buffer.from(csr));
      let item = (await c.items(view.campaign.id, { limit: 1 })).items[0]!;
      assert.deepEqual([item.state, item.newCertificateId], ['issued', first.certificateId]);
      // Asked again before using the first: the item follows the latest.
      const second = await est.reenroll({ id: `certificate:${old.record.id}` }, old.record.id, Buffer.from(decodePem(csrFor('est-1'), 'CERTIFICATE REQUEST')));
      item = (await c.items(view.campaign.id, { limit: 1 })).items[0]!;
      assert.deepEqual([item.state, item.newCertificateId], ['issued', second.certificateId]);

      await node.s.est.grace.used(second.certificateId);
      item = (await c.items(view.campaign.id, { limit: 1 })).items[0]!;
      assert.equal(item.state, 'retired');
      assert.equal((await node.s.store.getCertificate(old.record.id))?.status, 'revoked');
      assert.equal(pub.retained('$certfleet/things/est-1/certificate/renew-required'), undefined, 'confirmed: renew-required cleared');
      await c.kick();
      assert.equal((await c.get(view.campaign.id)).campaign.status, 'completed');
      await c.stop();
    });
  });
}
