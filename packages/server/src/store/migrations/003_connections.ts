import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v3: one row per MQTT connection of a device, written by the broker
 * (connect, then disconnect with a reason), so the registry can show when and
 * from where a certificate was used and spot one certificate used by several
 * devices at once (DESIGN.md "Lifecycle" audits).
 *
 * Expand only (migrations/index.ts): a new table, nothing else changes.
 * Same conventions as 001: text is COLLATE "C" on PostgreSQL, SQLite tables
 * are STRICT, primary keys are NOT NULL explicitly.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T =>
    pg ? t : (t.modifyEnd(sql`strict`) as T);

  // No foreign key to certificates: rows are bookkeeping written after the
  // fact by the broker, and must neither fail because of nor hold back any
  // change to certificate rows. node_id says which node owns an open row, so
  // a restarted node closes exactly the rows its crash left open.
  await strict(
    db.schema
      .createTable('connections')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('certificate_id', text, (c) => c.notNull())
      .addColumn('client_id', text, (c) => c.notNull())
      .addColumn('remote_address', text, (c) => c.notNull())
      .addColumn('connected_at', text, (c) => c.notNull())
      .addColumn('disconnected_at', text)
      .addColumn('disconnect_reason', text)
      .addColumn('node_id', text, (c) => c.notNull()),
  ).execute();
  // A certificate's history, newest first, keyed on (connected_at, id).
  await db.schema
    .createIndex('connections_certificate_connected_idx')
    .on('connections')
    .columns(['certificate_id', 'connected_at', 'id'])
    .execute();
  // Open connections (disconnected_at IS NULL) are few; this finds them without a scan.
  await db.schema.createIndex('connections_disconnected_idx').on('connections').column('disconnected_at').execute();
  // The fleet-wide listing, newest first, page by page.
  await db.schema.createIndex('connections_connected_idx').on('connections').columns(['connected_at', 'id']).execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('connections').execute();
}
