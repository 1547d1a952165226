import pg from 'pg';
import { sql, type Kysely } from 'kysely';
import { CertfleetError } from '../errors.js';
import type { Database } from './schema.js';

// Lower-case identifiers only, so the name means the same quoted or not (it is
// also spliced into search_path, which folds unquoted names to lower case).
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new CertfleetError('bad-request', `invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
  }
}

/**
 * A pool of at most 10 connections. With a dedicated schema every connection
 * gets it as search_path at start-up, so no query names a schema.
 */
export function createPool(url: string, schema: string | undefined): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Without a bound pg waits forever for a server that is not there;
    // callers get 'unavailable' instead.
    connectionTimeoutMillis: 10_000,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client losing its connection emits 'error' on the pool, and an
  // unhandled 'error' event would crash the process. pg drops that client;
  // the next query gets a fresh one or fails with 'unavailable'.
  pool.on('error', () => {});
  return pool;
}

/** Creates the dedicated schema if missing; returns the schema the store works in. */
export async function prepareSchema(db: Kysely<Database>, schema: string | undefined): Promise<string> {
  if (schema !== undefined) {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  }
  // A server configured with synchronous_commit=off acknowledges commits
  // before they reach disk: a crash would lose certificates already returned
  // to callers (DESIGN.md: "durable before the answer is sent").
  const { rows } = await sql<{ sync: string; schema: string | null }>`
    select current_setting('synchronous_commit') as sync, current_schema() as schema`.execute(db);
  const row = rows[0];
  if (row?.sync === 'off') {
    throw new CertfleetError(
      'unavailable',
      'PostgreSQL has synchronous_commit=off, which can lose acknowledged writes; set it to on',
    );
  }
  if (row?.schema == null) {
    throw new CertfleetError('unavailable', 'PostgreSQL search_path names no existing schema');
  }
  return row.schema;
}
