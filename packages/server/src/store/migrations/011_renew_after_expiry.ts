import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema 011: renewal after expiry and campaign deadlines.
 *
 * - cas.renew_after_expiry_days: how many days after its notAfter a device
 *   certificate this CA issued may still renew itself (POST
 *   /api/v1/renew-expired, lifecycle/renewal-after-expiry.ts); 0, the
 *   default, turns renewal after expiry off. A column of the CA rather than a
 *   setting, so it is read with the CA and changed with its audit entry in
 *   one transaction.
 * - campaigns.deadline_at: when a rotation campaign gives up on the devices
 *   that have not confirmed (their items fail with reason `deadline`); null,
 *   the default, is no deadline.
 *
 * Expand only (migrations/index.ts): two columns with defaults, which code
 * of the previous release neither reads nor writes.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const text = ctx.dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  await db.schema.alterTable('cas').addColumn('renew_after_expiry_days', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('campaigns').addColumn('deadline_at', text).execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('campaigns').dropColumn('deadline_at').execute();
  await db.schema.alterTable('cas').dropColumn('renew_after_expiry_days').execute();
}
