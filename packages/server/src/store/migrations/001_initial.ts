import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v1. Written with the schema builder plus two dialect switches:
 * - blobs are `blob` on SQLite and `bytea` on PostgreSQL;
 * - on PostgreSQL text columns use COLLATE "C", so ordering, keyset cursors
 *   and unique checks compare bytes exactly as SQLite's BINARY collation does
 *   (and ISO times sort by time whatever the database locale).
 * SQLite tables are STRICT, so a value of the wrong type is refused instead of
 * being silently stored with another affinity.
 * Primary keys are NOT NULL explicitly: SQLite otherwise lets a non-INTEGER
 * primary key hold NULL (a documented legacy quirk).
 * Status and kind columns have no CHECK: on SQLite changing a CHECK means
 * rebuilding the table; the closed sets live in the TypeScript types.
 */

// Kysely<any>: a migration must keep working when the TypeScript schema types
// have moved on to later versions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  const blob = pg ? 'bytea' : 'blob';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T =>
    pg ? t : (t.modifyEnd(sql`strict`) as T);

  await strict(
    db.schema
      .createTable('cas')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('name', text, (c) => c.notNull().unique())
      .addColumn('parent_id', text, (c) => c.references('cas.id'))
      .addColumn('kind', text, (c) => c.notNull())
      .addColumn('status', text, (c) => c.notNull())
      .addColumn('key_algorithm', text, (c) => c.notNull())
      .addColumn('subject', text, (c) => c.notNull())
      .addColumn('serial', text, (c) => c.notNull())
      .addColumn('certificate_der', blob, (c) => c.notNull())
      .addColumn('not_before', text, (c) => c.notNull())
      .addColumn('not_after', text, (c) => c.notNull())
      .addColumn('path_len', 'integer')
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('ca_keys')
      .addColumn('ca_id', text, (c) => c.primaryKey().notNull().references('cas.id'))
      .addColumn('key_store', text, (c) => c.notNull())
      .addColumn('sealed', blob, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  // No foreign key to cas (as designed): the journal is append-only evidence
  // of every serial ever attempted and must outlive any change to CA rows; the
  // signer only records intents for CAs whose key it holds.
  await strict(
    db.schema
      .createTable('issuance_journal')
      .addColumn('serial', text, (c) => c.primaryKey().notNull())
      .addColumn('issuer_id', text, (c) => c.notNull())
      .addColumn('profile', text, (c) => c.notNull())
      .addColumn('tbs_der', blob, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('things')
      .addColumn('name', text, (c) => c.primaryKey().notNull())
      .addColumn('attributes', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('certificates')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('serial', text, (c) => c.notNull().unique())
      .addColumn('issuer_id', text, (c) => c.notNull().references('cas.id'))
      .addColumn('thing_name', text, (c) => c.references('things.name'))
      .addColumn('status', text, (c) => c.notNull())
      .addColumn('profile', text, (c) => c.notNull())
      .addColumn('subject', text, (c) => c.notNull())
      .addColumn('not_before', text, (c) => c.notNull())
      .addColumn('not_after', text, (c) => c.notNull())
      .addColumn('key_algorithm', text, (c) => c.notNull())
      .addColumn('der', blob, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('revoked_at', text)
      .addColumn('revocation_reason', text),
  ).execute();

  const certificateIndexes: Array<[string, string[]]> = [
    ['certificates_not_after_idx', ['not_after']],
    ['certificates_status_idx', ['status']],
    ['certificates_thing_name_idx', ['thing_name']],
    ['certificates_issuer_id_idx', ['issuer_id']],
    // The keyset pagination order.
    ['certificates_created_at_id_idx', ['created_at', 'id']],
  ];
  for (const [name, columns] of certificateIndexes) {
    await db.schema.createIndex(name).on('certificates').columns(columns).execute();
  }

  await strict(
    db.schema
      .createTable('api_tokens')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('name', text, (c) => c.notNull())
      .addColumn('token_hash', text, (c) => c.notNull().unique())
      .addColumn('scopes', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text)
      .addColumn('revoked_at', text)
      .addColumn('last_used_at', text),
  ).execute();

  await strict(
    db.schema
      .createTable('settings')
      .addColumn('key', text, (c) => c.primaryKey().notNull())
      .addColumn('value', text, (c) => c.notNull()),
  ).execute();
}

export async function down(db: AnyDb): Promise<void> {
  // Reverse order of creation, so foreign keys never point at a dropped table.
  for (const table of ['settings', 'api_tokens', 'certificates', 'things', 'issuance_journal', 'ca_keys', 'cas']) {
    await db.schema.dropTable(table).execute();
  }
}
