import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { guarded } from './driver-errors.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for a CA's renewal policy (schema 011, migrations/011_renew_after_expiry.ts):
 * how many days after expiry a device certificate it issued may still renew
 * itself. Deciding whether a given certificate may is lifecycle/'s.
 */

export interface RenewalPolicyStore {
  /** Days after expiry a certificate of this CA may renew; 0 is off; undefined for an unknown CA. */
  renewAfterExpiryDays(caId: string): Promise<number | undefined>;
  /** Sets it with its audit entry in one transaction; 'not-found' for an unknown CA. */
  setRenewAfterExpiryDays(caId: string, days: number, audit?: AuditInput): Promise<void>;
}

type Tables = { cas: { id: string; renew_after_expiry_days: number } };
const t = (db: Db) => db.withTables<Tables>();

export async function renewAfterExpiryDays(db: Db, caId: string): Promise<number | undefined> {
  const row = await guarded(`CA ${caId}`, () => t(db).selectFrom('cas').select('renew_after_expiry_days').where('id', '=', caId).executeTakeFirst());
  return row === undefined ? undefined : Number(row.renew_after_expiry_days);
}

export async function setRenewAfterExpiryDays(ctx: StoreContext, caId: string, days: number, audit?: AuditInput): Promise<void> {
  if (!Number.isInteger(days) || days < 0) throw new CertfleetError('bad-request', 'renewAfterExpiryDays must be a whole number of days, 0 or more');
  await write(ctx, `CA ${caId}`, audit, async (trx) => {
    const done = await t(trx).updateTable('cas').set({ renew_after_expiry_days: days }).where('id', '=', caId).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new CertfleetError('not-found', `no CA ${caId}`);
  });
}
