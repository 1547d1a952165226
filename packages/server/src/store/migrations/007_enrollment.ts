import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v7: EST enrollment (RFC 7030) and bootstrap by network identity
 * (DESIGN.md "Provisioning").
 *
 * - est_enrollment_secrets: one-time secrets for simpleenroll over HTTP
 *   Basic, stored as the SHA-256 of the secret only, spent (spent_at,
 *   certificate_id) in the transaction that stores the certificate.
 * - certificate_reenrollments: the "replaces" link of a simplereenroll
 *   certificate to the one it replaces. The old one stays active until the
 *   link is settled: the new certificate's first use, a later re-enrollment,
 *   or the end of the grace period (grace_until).
 * - network_identities: IMSI / IMEI bound to a thing, unique per type
 *   across things (the primary key) and one of each type per thing.
 *
 * Expand only (migrations/index.ts): three new tables. Same conventions as
 * 001: text is COLLATE "C" on PostgreSQL, SQLite tables are STRICT.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T => (pg ? t : (t.modifyEnd(sql`strict`) as T));

  // No foreign key to things: a per-device secret may name a thing that is
  // created only when the device enrolls.
  await strict(
    db.schema
      .createTable('est_enrollment_secrets')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('username', text, (c) => c.notNull().unique())
      .addColumn('secret_hash', text, (c) => c.notNull())
      .addColumn('thing_name', text)
      .addColumn('batch', text)
      .addColumn('template', text)
      .addColumn('profile', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('spent_at', text)
      .addColumn('certificate_id', text, (c) => c.references('certificates.id'))
      .addColumn('revoked_at', text),
  ).execute();
  // GET /api/v1/enrollment-secrets?batch= pages a batch in creation order.
  await db.schema.createIndex('est_enrollment_secrets_batch_idx').on('est_enrollment_secrets').columns(['batch', 'created_at', 'id']).execute();
  await db.schema.createIndex('est_enrollment_secrets_created_idx').on('est_enrollment_secrets').columns(['created_at', 'id']).execute();

  await strict(
    db.schema
      .createTable('certificate_reenrollments')
      .addColumn('new_certificate_id', text, (c) => c.primaryKey().notNull().references('certificates.id'))
      .addColumn('old_certificate_id', text, (c) => c.notNull().references('certificates.id'))
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('grace_until', text, (c) => c.notNull())
      .addColumn('settled_at', text)
      // 'used' | 'grace-expired' | 'superseded' (a later re-enrollment of the same old certificate).
      .addColumn('outcome', text),
  ).execute();
  // A second re-enrollment finds the pending link of the same old certificate.
  await db.schema.createIndex('certificate_reenrollments_old_idx').on('certificate_reenrollments').columns(['old_certificate_id']).execute();
  // The sweep walks unsettled links in grace order.
  await db.schema.createIndex('certificate_reenrollments_grace_idx').on('certificate_reenrollments').columns(['settled_at', 'grace_until']).execute();

  // The thing's own identity: deleting the thing releases it.
  await strict(
    db.schema
      .createTable('network_identities')
      .addColumn('type', text, (c) => c.notNull())
      .addColumn('value', text, (c) => c.notNull())
      .addColumn('thing_name', text, (c) => c.notNull().references('things.name').onDelete('cascade'))
      .addColumn('created_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('network_identities_pk', ['type', 'value']),
  ).execute();
  await db.schema.createIndex('network_identities_thing_idx').on('network_identities').columns(['thing_name', 'type']).unique().execute();
}

export async function down(db: AnyDb): Promise<void> {
  for (const table of ['network_identities', 'certificate_reenrollments', 'est_enrollment_secrets']) {
    await db.schema.dropTable(table).execute();
  }
}
