import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v7: CAs registered from outside (a factory HSM, a contract
 * manufacturer's CA), with proof of possession of their key as AWS IoT does.
 *
 * - ca_registration_codes: the codes a token holder asks for and then signs
 *   into a verification certificate's subject CN. Stored as SHA-256 only,
 *   bound to the token that asked, expiring, single use (consumed_at, and the
 *   CA it registered).
 * - external_cas: one row per CA registered from outside, beside its `cas`
 *   row (kind 'external', no ca_keys row: certfleet never signs for it). The
 *   mode ('default' with proof of possession, 'sni-only' without) and the
 *   certificate's SHA-256, unique, so the same certificate cannot be
 *   registered twice even by two concurrent requests.
 *
 * Expand only (migrations/index.ts): two new tables, nothing else changes.
 * In particular certificates.serial stays UNIQUE across the database: a
 * device certificate made elsewhere whose serial is already taken is refused
 * with a 409 (registry/certificate-registration.ts), which keeps every
 * serial-keyed lookup (OCSP, CRLs) exact.
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

  // No foreign key from ca_id: it is set when the code is spent, in the
  // transaction that inserts that CA, and is only evidence of which CA it was.
  await strict(
    db.schema
      .createTable('ca_registration_codes')
      .addColumn('code_hash', text, (c) => c.primaryKey().notNull())
      .addColumn('token_id', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('consumed_at', text)
      .addColumn('ca_id', text),
  ).execute();
  // Purging expired codes walks them in expiry order.
  await db.schema.createIndex('ca_registration_codes_expires_idx').on('ca_registration_codes').column('expires_at').execute();

  await strict(
    db.schema
      .createTable('external_cas')
      .addColumn('ca_id', text, (c) => c.primaryKey().notNull().references('cas.id'))
      .addColumn('mode', text, (c) => c.notNull())
      .addColumn('certificate_sha256', text, (c) => c.notNull().unique())
      .addColumn('registered_by', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('external_cas').execute();
  await db.schema.dropTable('ca_registration_codes').execute();
}
