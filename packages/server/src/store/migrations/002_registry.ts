import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v2: thing groups, versioned policies and their attachments, the
 * certificate status history, CA provisioning settings, the hash-chained audit
 * log, and certificate indexes shaped for expiry queries.
 *
 * Expand only (migrations/index.ts): v1 code keeps working on a v2 database.
 * The two certificate indexes dropped here are prefixes of the composite ones
 * created in their place, so every v1 query still finds an index.
 *
 * Same conventions as 001: text is COLLATE "C" on PostgreSQL, SQLite tables
 * are STRICT, primary keys are NOT NULL explicitly, no CHECK on closed sets.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T =>
    pg ? t : (t.modifyEnd(sql`strict`) as T);

  // CA provisioning settings (JITP/JITR). SQLite has no boolean: 0 or 1.
  await db.schema
    .alterTable('cas')
    .addColumn('auto_registration', pg ? 'boolean' : 'integer', (c) => c.notNull().defaultTo(pg ? false : 0))
    .execute();
  await db.schema.alterTable('cas').addColumn('provisioning_template', text).execute();

  await strict(
    db.schema
      .createTable('thing_groups')
      .addColumn('name', text, (c) => c.primaryKey().notNull())
      .addColumn('parent_name', text, (c) => c.references('thing_groups.name'))
      .addColumn('description', text)
      .addColumn('attributes', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();
  await db.schema.createIndex('thing_groups_parent_name_idx').on('thing_groups').column('parent_name').execute();

  await strict(
    db.schema
      .createTable('thing_group_members')
      .addColumn('group_name', text, (c) => c.notNull().references('thing_groups.name'))
      .addColumn('thing_name', text, (c) => c.notNull().references('things.name'))
      .addColumn('created_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('thing_group_members_pk', ['group_name', 'thing_name']),
  ).execute();
  // groupsOfThing and deleteThing look members up by thing.
  await db.schema.createIndex('thing_group_members_thing_idx').on('thing_group_members').column('thing_name').execute();

  // latest_version: the highest number ever given, so a deleted version's
  // number is never handed out again (a cached (name, version) stays true).
  await strict(
    db.schema
      .createTable('policies')
      .addColumn('name', text, (c) => c.primaryKey().notNull())
      .addColumn('default_version', 'integer', (c) => c.notNull())
      .addColumn('latest_version', 'integer', (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull()),
  ).execute();

  await strict(
    db.schema
      .createTable('policy_versions')
      .addColumn('policy_name', text, (c) => c.notNull().references('policies.name'))
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('document', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('policy_versions_pk', ['policy_name', 'version']),
  ).execute();

  // target_id names a certificate or a group depending on target_type, so it
  // can have no foreign key; the store checks the target on attach and
  // removes a group's attachments with the group.
  await strict(
    db.schema
      .createTable('policy_attachments')
      .addColumn('policy_name', text, (c) => c.notNull().references('policies.name'))
      .addColumn('target_type', text, (c) => c.notNull())
      .addColumn('target_id', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('policy_attachments_pk', ['policy_name', 'target_type', 'target_id']),
  ).execute();
  // effectivePolicies: from a certificate or group to its policies.
  await db.schema
    .createIndex('policy_attachments_target_idx')
    .on('policy_attachments')
    .columns(['target_type', 'target_id'])
    .execute();

  // id orders entries written within the same millisecond.
  await strict(
    db.schema
      .createTable('certificate_status_history')
      .addColumn('id', pg ? 'bigserial' : 'integer', (c) => c.primaryKey().notNull())
      .addColumn('certificate_id', text, (c) => c.notNull().references('certificates.id'))
      .addColumn('status', text, (c) => c.notNull())
      .addColumn('reason', text)
      .addColumn('actor', text, (c) => c.notNull())
      .addColumn('at', text, (c) => c.notNull()),
  ).execute();
  await db.schema
    .createIndex('certificate_status_history_certificate_idx')
    .on('certificate_status_history')
    .columns(['certificate_id', 'id'])
    .execute();

  // seq is assigned by the store as last + 1 under the chain lock, not by a
  // sequence: PostgreSQL sequences skip numbers on rollback, and a skipped
  // number would be indistinguishable from a deleted entry (audit.ts).
  await strict(
    db.schema
      .createTable('audit_log')
      .addColumn('seq', pg ? 'bigint' : 'integer', (c) => c.primaryKey().notNull())
      .addColumn('at', text, (c) => c.notNull())
      .addColumn('actor', text, (c) => c.notNull())
      .addColumn('action', text, (c) => c.notNull())
      .addColumn('target', text, (c) => c.notNull())
      .addColumn('details', text, (c) => c.notNull())
      .addColumn('prev_hash', text, (c) => c.notNull())
      .addColumn('hash', text, (c) => c.notNull()),
  ).execute();
  await db.schema.createIndex('audit_log_target_idx').on('audit_log').columns(['target', 'seq']).execute();
  await db.schema.createIndex('audit_log_actor_idx').on('audit_log').columns(['actor', 'seq']).execute();

  // Expiry queries are ordered by (not_after, id) (certificates.ts), so these
  // serve both the range and the order, and count(*) from the index alone.
  await db.schema
    .createIndex('certificates_not_after_id_idx')
    .on('certificates')
    .columns(['not_after', 'id'])
    .execute();
  await db.schema
    .createIndex('certificates_status_not_after_id_idx')
    .on('certificates')
    .columns(['status', 'not_after', 'id'])
    .execute();
  await db.schema.dropIndex('certificates_not_after_idx').execute();
  await db.schema.dropIndex('certificates_status_idx').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.createIndex('certificates_not_after_idx').on('certificates').column('not_after').execute();
  await db.schema.createIndex('certificates_status_idx').on('certificates').column('status').execute();
  await db.schema.dropIndex('certificates_status_not_after_id_idx').execute();
  await db.schema.dropIndex('certificates_not_after_id_idx').execute();
  for (const table of [
    'audit_log',
    'certificate_status_history',
    'policy_attachments',
    'policy_versions',
    'policies',
    'thing_group_members',
    'thing_groups',
  ]) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema.alterTable('cas').dropColumn('provisioning_template').execute();
  await db.schema.alterTable('cas').dropColumn('auto_registration').execute();
}
