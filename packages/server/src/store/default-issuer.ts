import { sql } from 'kysely';
import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { putSetting } from './settings.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for naming the default issuer (the CA new certificates come from
 * unless a request names another): a row of `settings`, written with its
 * audit entry in one transaction, and only while the CA is active, checked
 * inside that transaction so a CA deactivated a moment earlier is never
 * named. PostgreSQL: the CA's row is locked (FOR SHARE) until commit, so a
 * concurrent status change waits for it; SQLite: BEGIN IMMEDIATE (sqlite.ts)
 * already holds the single write lock.
 */

export interface DefaultIssuerStore {
  /** Names `caId` in setting `key`, audited; 'invalid-state' unless the CA exists and is active at commit. */
  putDefaultIssuer(key: string, caId: string, audit: AuditInput): Promise<void>;
}

export async function putDefaultIssuer(ctx: StoreContext, key: string, caId: string, audit: AuditInput): Promise<void> {
  await write(ctx, `default issuer ${caId}`, audit, async (trx) => {
    const lock = ctx.dialect === 'postgres' ? sql` for share` : sql``;
    const { rows } = await sql<{ status: string }>`select status from cas where id = ${caId}${lock}`.execute(trx);
    const status = rows[0]?.status;
    if (status !== 'active') throw new CertfleetError('invalid-state', `CA ${caId} is ${status ?? 'unknown'}: only an active CA can be the default issuer`);
    await putSetting(trx, key, caId);
  });
}
