import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore, type OpenStoreOptions, type Store, type StoreDialect } from './index.js';
import { PG_URL, dropTestSchema, postgresUnreachable } from './test-fixtures.js';

/*
 * Runs one test body on SQLite and on PostgreSQL (skipped, visibly, when no
 * server answers), each database fresh: a temporary file, or a random schema
 * dropped afterwards. Tests only.
 */

export interface OpenedStore {
  store: Store;
  /** Raw SQL against the same database, for tests that tamper behind the store's back. */
  exec(sqlText: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
}

export interface DialectContext {
  readonly dialect: StoreDialect;
  /** The suite's shared store, opened before the first test. */
  store(): Store;
  /** Another empty database, closed and removed with the suite. */
  fresh(options?: Pick<OpenStoreOptions, 'now'>): Promise<OpenedStore>;
}

export async function describeOnBothDialects(title: string, body: (ctx: DialectContext) => void): Promise<void> {
  const postgres = await postgresUnreachable();
  for (const dialect of ['sqlite', 'postgres'] as const) {
    const skip = dialect === 'postgres' ? (postgres.skip ?? false) : false;
    describe(`${title} on ${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, { skip }, () => {
      const opened: Store[] = [];
      const schemas: string[] = [];
      let dir: string | undefined;
      let shared: Store | undefined;

      const fresh = async (options: Pick<OpenStoreOptions, 'now'> = {}): Promise<OpenedStore> => {
        const id = randomBytes(6).toString('hex');
        if (dialect === 'sqlite') {
          dir ??= mkdtempSync(join(tmpdir(), 'certfleet-store-'));
          const path = join(dir, `${id}.db`);
          const store = await openStore(path, options);
          opened.push(store);
          return { store, exec: async (text, params = []) => sqliteExec(path, text, params) };
        }
        const schema = `certfleet_test_${id}`;
        schemas.push(schema);
        const store = await openWithRetry(() => openStore(PG_URL, { ...options, schema }));
        opened.push(store);
        return { store, exec: (text, params = []) => postgresExec(schema, text, params) };
      };

      before(async () => {
        shared = (await fresh()).store;
      });
      after(async () => {
        for (const store of opened) await store.close();
        for (const schema of schemas) await dropTestSchema(schema);
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      });

      body({
        dialect,
        store: () => {
          if (shared === undefined) throw new Error('store not open yet');
          return shared;
        },
        fresh,
      });
    });
  }
}

function sqliteExec(path: string, text: string, params: unknown[]): Array<Record<string, unknown>> {
  const db = new Database(path);
  try {
    const statement = db.prepare(text);
    if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
    statement.run(...params);
    return [];
  } finally {
    db.close();
  }
}

async function postgresExec(schema: string, text: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    // Placeholders are written ? (SQLite style) in tests; pg wants $1, $2...
    let n = 0;
    const result = await client.query(text.replace(/\?/g, () => `$${(n += 1)}`), params);
    return result.rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

/**
 * Under heavy parallel load (CI runs the suites two at a time beside the
 * integration tests), opening a fresh PostgreSQL schema has been seen, rarely,
 * to fail during migration ("schema … does not exist", "database error on
 * database open"). Not understood yet and not reproduced in isolation; a test
 * retries the open rather than fail for it, and prints the driver's own
 * error so the cause can be found. Production opens are not retried.
 */
export async function openWithRetry<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      const cause = (err as { cause?: { message?: string; code?: string } }).cause;
      console.error(`certfleet test: PostgreSQL open failed (attempt ${attempt}): ${(err as Error).message}; driver: ${cause?.code ?? ''} ${cause?.message ?? ''}`);
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}
