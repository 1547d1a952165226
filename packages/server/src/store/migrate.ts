import { Migrator, type Kysely } from 'kysely';
import { CertfleetError } from '../errors.js';
import { storeError } from './driver-errors.js';
import { migrations } from './migrations/index.js';
import type { StoreDialect } from './schema.js';

// Kysely's defaults, named here because migrate() reads the table itself.
const MIGRATION_TABLE = 'kysely_migration';

/**
 * Brings the schema to the latest version this code knows. Safe to run on
 * every open and from several nodes at once (Kysely takes a lock: an advisory
 * lock on PostgreSQL; SQLite has a single writer).
 *
 * `schema` (PostgreSQL) pins Kysely's bookkeeping tables to the schema the
 * store works in: without it Kysely looks for them in every schema of the
 * database and can mistake another schema's table for ours.
 */
export async function migrate(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  dialect: StoreDialect,
  schema: string | undefined,
): Promise<void> {
  const known = migrations({ dialect });
  if (await isNewerThanCode(db, Object.keys(known), schema)) return;

  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => known },
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const translated = storeError(error, `schema migration ${failed ?? ''}`.trim());
    if (translated.code === 'unavailable') throw translated;
    throw new CertfleetError('internal', `schema migration ${failed ?? ''} failed: ${describe(error)}`, {
      cause: error,
    });
  }
}

/**
 * True when the database already ran every migration we know plus later ones:
 * an older node during a rolling upgrade. Kysely would refuse ("previously
 * executed migration is missing"); since every migration keeps the previous
 * release's code working, this node can open the store as it is.
 */
async function isNewerThanCode(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  known: string[],
  schema: string | undefined,
): Promise<boolean> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  const exists = tables.some((t) => t.name === MIGRATION_TABLE && (schema === undefined || t.schema === schema));
  if (!exists) return false;
  const table = schema === undefined ? MIGRATION_TABLE : `${schema}.${MIGRATION_TABLE}`;
  const rows: Array<{ name: string }> = await db.selectFrom(table).select('name').execute();
  const executed = new Set(rows.map((r) => r.name));
  const unknown = [...executed].filter((name) => !known.includes(name));
  if (unknown.length === 0) return false;
  const missing = known.filter((name) => !executed.has(name));
  if (missing.length > 0) {
    throw new CertfleetError(
      'internal',
      `database schema has migrations ${unknown.join(', ')} unknown to this version but lacks ${missing.join(', ')}`,
    );
  }
  return true;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
