import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import * as attachments from './attachments.js';
import { appendAudit, prepareAudit } from './audit.js';
import * as certificates from './certificates.js';
import { toIso } from './columns.js';
import * as groups from './groups.js';
import type { AutoRegistration, AutoRegistrationResult, ThingAttributes } from './records.js';
import { checkAttributes } from './things.js';
import { guarded } from './driver-errors.js';
import { transaction, type StoreContext } from './transaction.js';

/*
 * Just-in-time registration of a device certificate (provisioning/jit.ts
 * decides what; this writes it): the thing (created or reused), the
 * certificate with its first history entry, its policies, the thing's
 * groups and the audit entry commit together or not at all, so a device is
 * never half-provisioned.
 *
 * Two first connections of one certificate race here: the certificates
 * primary key lets exactly one insert commit. The other transaction either
 * sees the row at its first statement (returns it, registered: false) or
 * fails with 'conflict' (PostgreSQL, when both were in flight), and its
 * caller reads the winner's row. The thing is inserted with ON CONFLICT DO
 * NOTHING and memberships only when missing, so the loser never fails on them.
 */

export async function autoRegisterCertificate(
  ctx: StoreContext,
  reg: AutoRegistration,
  audit?: AuditInput,
): Promise<AutoRegistrationResult> {
  const c = reg.certificate;
  const thing = c.thingName;
  if (thing === null && reg.groups.length > 0) throw new CertfleetError('bad-request', 'groups need a thing');
  const attributes: ThingAttributes = checkAttributes(reg.thingAttributes ?? {}, 'thing');
  const at = toIso(ctx.now(), 'createdAt');
  const entry = audit === undefined ? undefined : prepareAudit(audit, ctx.now);

  // As write() (transaction.ts), except that a certificate found already
  // registered writes nothing, not even the audit entry.
  return guarded(`certificate ${c.id}`, () => transaction(ctx.db, async (trx) => {
    const inner: StoreContext = { ...ctx, db: trx };
    const existing = await certificates.getCertificate(trx, c.id);
    if (existing !== undefined) return { certificate: existing, registered: false, thingCreated: false };

    let thingCreated = false;
    if (thing !== null) {
      const inserted = await trx
        .insertInto('things')
        .values({ name: thing, attributes: JSON.stringify(attributes), created_at: at, updated_at: at })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      thingCreated = (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
    }
    // Not audited on its own: the registration's one entry is appended last.
    await certificates.insertCertificate(inner, c);
    for (const policy of reg.policies) await attachments.attachPolicy(inner, policy, { type: 'certificate', id: c.id });
    for (const group of reg.groups) {
      if (thing === null) break;
      const member = await trx
        .selectFrom('thing_group_members')
        .select('group_name')
        .where('group_name', '=', group)
        .where('thing_name', '=', thing)
        .executeTakeFirst();
      if (member === undefined) await groups.addThingToGroup(inner, group, thing);
    }
    const certificate = await certificates.getCertificate(trx, c.id);
    if (certificate === undefined) throw new CertfleetError('internal', `certificate ${c.id} vanished inside its own transaction`);
    if (entry !== undefined) await appendAudit(trx, ctx.dialect, entry);
    return { certificate, registered: true, thingCreated };
  }));
}
