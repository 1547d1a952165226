import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v8: certificate renewal over MQTT and rotation campaigns
 * (docs/device-protocol.md "Renewal and rotation campaigns").
 *
 * - certificate_renewals: a certificate issued to renew another, linked to
 *   it. Confirmation (from a connection made with the new certificate) sets
 *   confirmed_at and retire_at; the old certificate is deactivated then and
 *   revoked `superseded` once retire_at has passed (retired_at). The sweep
 *   that does that walks this table, so it survives a restart.
 * - campaigns: a rotation campaign, its selection as JSON (what it was
 *   created from), throttle, grace period and the issuer of the new
 *   certificates (null: each old certificate's own issuer).
 * - campaign_items: one row per target certificate, with its progress
 *   (pending → notified → issued → confirmed → retired, or failed with a
 *   reason) and the certificate that renewed it.
 *
 * Expand only (migrations/index.ts): three new tables. Same conventions as
 * 001: text is COLLATE "C" on PostgreSQL, SQLite tables are STRICT, primary
 * keys are NOT NULL explicitly, times are ISO-8601 UTC text.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T => (pg ? t : (t.modifyEnd(sql`strict`) as T));

  await strict(
    db.schema
      .createTable('campaigns')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('status', text, (c) => c.notNull())
      .addColumn('selection', text, (c) => c.notNull())
      .addColumn('rate_per_minute', 'integer', (c) => c.notNull())
      .addColumn('grace_seconds', 'integer', (c) => c.notNull())
      .addColumn('issuer_id', text)
      .addColumn('created_by', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('campaign_items')
      .addColumn('campaign_id', text, (c) => c.notNull().references('campaigns.id'))
      .addColumn('certificate_id', text, (c) => c.notNull().references('certificates.id'))
      .addColumn('thing_name', text)
      .addColumn('state', text, (c) => c.notNull())
      .addColumn('reason', text)
      .addColumn('new_certificate_id', text)
      .addColumn('notified_at', text)
      .addColumn('updated_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('campaign_items_pk', ['campaign_id', 'certificate_id']),
  ).execute();
  // The runner takes the next pending items of a campaign; counts per state; renewal finds a certificate's open item.
  await db.schema.createIndex('campaign_items_state_idx').on('campaign_items').columns(['campaign_id', 'state', 'certificate_id']).execute();
  await db.schema.createIndex('campaign_items_certificate_idx').on('campaign_items').columns(['certificate_id']).execute();

  await strict(
    db.schema
      .createTable('certificate_renewals')
      .addColumn('certificate_id', text, (c) => c.primaryKey().notNull().references('certificates.id'))
      .addColumn('replaces_id', text, (c) => c.notNull().references('certificates.id'))
      .addColumn('campaign_id', text)
      .addColumn('grace_seconds', 'integer', (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('confirmed_at', text)
      .addColumn('retire_at', text)
      .addColumn('retired_at', text),
  ).execute();
  await db.schema.createIndex('certificate_renewals_replaces_idx').on('certificate_renewals').columns(['replaces_id']).execute();
  // The sweep walks confirmed renewals not yet retired, by retirement time.
  await db.schema.createIndex('certificate_renewals_retire_idx').on('certificate_renewals').columns(['retired_at', 'retire_at']).execute();
}

export async function down(db: AnyDb): Promise<void> {
  for (const table of ['certificate_renewals', 'campaign_items', 'campaigns']) {
    await db.schema.dropTable(table).execute();
  }
}
