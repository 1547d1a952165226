import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema 009: issuer rotation, trust-anchor rollover, stored audit findings.
 *
 * - ca_cross_certificates: extra certificates of a CA — its subject and key
 *   signed by another (older) root — served in chains so devices that trust
 *   only the old root accept what the new CA signs (RFC 4158 §2.3, cross
 *   certification). The CA row keeps its own (self-signed or parent-signed)
 *   certificate.
 * - trust_bundle_versions: each version of the bundle of roots devices
 *   trust; a version is never changed once written, a change writes the next.
 * - trust_bundle_acks: the newest bundle version each thing acknowledged.
 * - audit_runs, audit_findings: audit results kept between runs; a finding is
 *   one (reason, resource) pair, with when it was first and last found and
 *   when a later run no longer found it.
 *
 * Plus indexes the fleet audit needs at a million certificates (lifecycle/
 * audits.ts, bench/audit.ts): weak keys by algorithm, active certificates
 * by issuer (dependents of a CA, revoked CAs with active certificates).
 *
 * Expand only (migrations/index.ts). Same conventions as 001: text is
 * COLLATE "C" on PostgreSQL, SQLite tables are STRICT, primary keys are NOT
 * NULL explicitly.
 */

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
      .createTable('ca_cross_certificates')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('ca_id', text, (c) => c.notNull().references('cas.id'))
      .addColumn('signed_by', text, (c) => c.notNull().references('cas.id'))
      .addColumn('serial', text, (c) => c.notNull())
      .addColumn('der', blob, (c) => c.notNull())
      .addColumn('not_before', text, (c) => c.notNull())
      .addColumn('not_after', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();
  await db.schema.createIndex('ca_cross_certificates_ca_idx').on('ca_cross_certificates').columns(['ca_id', 'created_at']).execute();

  await strict(
    db.schema
      .createTable('trust_bundle_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey().notNull())
      // JSON array of CA ids, in the order the bundle lists them.
      .addColumn('roots', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  // No foreign key to things: an acknowledgement outlives nothing it needs,
  // and deleting a thing must not be blocked by it (the store removes it).
  await strict(
    db.schema
      .createTable('trust_bundle_acks')
      .addColumn('thing_name', text, (c) => c.primaryKey().notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('acknowledged_at', text, (c) => c.notNull()),
  ).execute();
  await db.schema.createIndex('trust_bundle_acks_version_idx').on('trust_bundle_acks').columns(['version', 'thing_name']).execute();

  await strict(
    db.schema
      .createTable('audit_runs')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('started_at', text, (c) => c.notNull())
      .addColumn('finished_at', text, (c) => c.notNull())
      // 'api', 'cli', 'schedule'.
      .addColumn('trigger', text, (c) => c.notNull())
      .addColumn('options', text, (c) => c.notNull())
      .addColumn('findings', 'integer', (c) => c.notNull())
      .addColumn('new_findings', 'integer', (c) => c.notNull())
      .addColumn('resolved_findings', 'integer', (c) => c.notNull()),
  ).execute();
  await db.schema.createIndex('audit_runs_started_idx').on('audit_runs').columns(['started_at', 'id']).execute();

  await strict(
    db.schema
      .createTable('audit_findings')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('reason_code', text, (c) => c.notNull())
      .addColumn('resource_type', text, (c) => c.notNull())
      .addColumn('resource', text, (c) => c.notNull())
      .addColumn('severity', text, (c) => c.notNull())
      .addColumn('message', text, (c) => c.notNull())
      // JSON array of mitigation names.
      .addColumn('mitigations', text, (c) => c.notNull())
      .addColumn('first_seen', text, (c) => c.notNull())
      .addColumn('last_seen', text, (c) => c.notNull())
      .addColumn('last_run_id', text, (c) => c.notNull())
      .addColumn('resolved_at', text),
  ).execute();
  // Keyset paging of the listing: open findings first filtered by severity or reason.
  await db.schema.createIndex('audit_findings_severity_idx').on('audit_findings').columns(['severity', 'id']).execute();
  await db.schema.createIndex('audit_findings_reason_idx').on('audit_findings').columns(['reason_code', 'id']).execute();
  await db.schema.createIndex('audit_findings_open_idx').on('audit_findings').columns(['resolved_at', 'last_run_id']).execute();

  // Weak-key audit: active RSA certificates of one algorithm, in id order, without reading every row.
  await db.schema.createIndex('certificates_key_algorithm_status_idx').on('certificates').columns(['key_algorithm', 'status', 'id']).execute();
  // Silent devices: active certificates on a thing, by age. Without it SQLite walks every active
  // certificate through (status, not_after, id) and reads each row (bench/audit.ts: 2 s per 300,000).
  await db.schema.createIndex('certificates_status_thing_created_idx').on('certificates').columns(['status', 'thing_name', 'created_at']).execute();
  // Dependents of a CA and revoked CAs with active certificates: a count from the index alone.
  await db.schema.createIndex('certificates_issuer_status_idx').on('certificates').columns(['issuer_id', 'status', 'id']).execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('certificates_status_thing_created_idx').execute();
  await db.schema.dropIndex('certificates_issuer_status_idx').execute();
  await db.schema.dropIndex('certificates_key_algorithm_status_idx').execute();
  for (const table of ['audit_findings', 'audit_runs', 'trust_bundle_acks', 'trust_bundle_versions', 'ca_cross_certificates']) {
    await db.schema.dropTable(table).execute();
  }
}
