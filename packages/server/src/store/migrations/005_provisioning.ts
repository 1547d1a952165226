import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v6: fleet provisioning by claim (DESIGN.md "Provisioning").
 *
 * - provisioning_templates: named templates, the document as validated JSON
 *   (its grammar belongs to provisioning/templates.ts, not to the store).
 * - provisioning_claims: which certificates are claim credentials, and for
 *   which template. The broker reads it at CONNECT: a claim certificate may
 *   only ask for its own certificate and provisioning.
 * - ownership_tokens: the certificateOwnershipToken handed out with a
 *   certificate made for a claim, stored as its SHA-256 only, bound to that
 *   certificate and to the claim that asked, single use (consumed_at), and
 *   expiring (one hour). Rows whose certificate was never provisioned are
 *   swept after expiry (provisioning/fleet-provisioning.ts).
 *
 * Expand only (migrations/index.ts): three new tables, nothing else changes.
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

  await strict(
    db.schema
      .createTable('provisioning_templates')
      .addColumn('name', text, (c) => c.primaryKey().notNull())
      .addColumn('document', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull()),
  ).execute();

  // No foreign key to the template: deleting a template leaves its claims
  // unable to provision (the request is answered NotFound), which is what an
  // operator retiring a template wants; the claim certificate stays revocable.
  await strict(
    db.schema
      .createTable('provisioning_claims')
      .addColumn('certificate_id', text, (c) => c.primaryKey().notNull().references('certificates.id'))
      .addColumn('template', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('ownership_tokens')
      .addColumn('token_hash', text, (c) => c.primaryKey().notNull())
      .addColumn('certificate_id', text, (c) => c.notNull().references('certificates.id'))
      .addColumn('claim_certificate_id', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('consumed_at', text),
  ).execute();
  // The sweep walks expired tokens in expiry order.
  await db.schema.createIndex('ownership_tokens_expires_idx').on('ownership_tokens').columns(['expires_at']).execute();
  // Deleting a certificate checks the foreign key from here.
  await db.schema.createIndex('ownership_tokens_certificate_idx').on('ownership_tokens').column('certificate_id').execute();
}

export async function down(db: AnyDb): Promise<void> {
  for (const table of ['ownership_tokens', 'provisioning_claims', 'provisioning_templates']) {
    await db.schema.dropTable(table).execute();
  }
}
