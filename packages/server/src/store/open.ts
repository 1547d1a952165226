import { Kysely, PostgresDialect } from 'kysely';
import { CertfleetError } from '../errors.js';
import { storeError } from './driver-errors.js';
import { migrate } from './migrate.js';
import { checkSchemaName, createPool, prepareSchema } from './postgres.js';
import type { Database, StoreDialect } from './schema.js';
import { ImmediateSqliteDialect, openSqliteDatabase } from './sqlite.js';
import { Store } from './store.js';

export interface OpenStoreOptions {
  /** PostgreSQL only: work in this schema (created if missing) instead of the default search_path. */
  schema?: string;
  /** The clock for times the store stamps itself (creation and update times, token revocation, audit entries without `at`). */
  now?: () => Date;
}

export type StoreLocation = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

/**
 * `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite:PATH`, a plain
 * file path or `:memory:` is SQLite. Any other scheme is refused rather than
 * taken for a file name.
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url };
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  if (path === '') throw new CertfleetError('bad-request', 'empty database location');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new CertfleetError('bad-request', `unsupported database URL scheme in ${JSON.stringify(url)}`);
  }
  return { dialect: 'sqlite', path };
}

/** Opens the database, brings its schema to the latest version, and returns the store. */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const location = parseStoreUrl(url);
  const now = opts.now ?? (() => new Date());
  if (location.dialect === 'sqlite') {
    if (opts.schema !== undefined) throw new CertfleetError('bad-request', 'schema applies to PostgreSQL only');
    let database;
    try {
      database = openSqliteDatabase(location.path);
    } catch (err) {
      // A missing directory, a file that is not a database, no permission:
      // all configuration problems the operator must see verbatim.
      const reason = err instanceof Error ? err.message : String(err);
      throw new CertfleetError('unavailable', `cannot open SQLite database ${location.path}: ${reason}`, {
        cause: err,
      });
    }
    const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database }) });
    return ready('sqlite', db, undefined, now);
  }
  if (opts.schema !== undefined) checkSchemaName(opts.schema);
  const pool = createPool(location.url, opts.schema);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return ready('postgres', db, opts.schema, now);
}

async function ready(
  dialect: StoreDialect,
  db: Kysely<Database>,
  schema: string | undefined,
  now: () => Date,
): Promise<Store> {
  try {
    const workSchema = dialect === 'postgres' ? await prepareSchema(db, schema) : undefined;
    await migrate(db, dialect, workSchema);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw storeError(err, 'database open');
  }
  return new Store(dialect, db, now);
}
