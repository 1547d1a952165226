import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { AUDIT_GENESIS_HASH, auditHash } from './audit.js';
import { countQuery, pageQuery } from './certificates.js';
import type { CertificateQuery, NewCertificate } from './records.js';
import type { Database as Schema } from './schema.js';

/*
 * FOR BENCHMARKS ONLY (scale.bench.ts): loading a million rows through the
 * store's methods would take far longer than the queries being measured. Not
 * exported from index.ts; nothing in the service may use it. Rows skip what
 * insertCertificate adds (status history, audit entry) and are written
 * straight through the driver, one transaction per BENCH_CHUNK rows.
 */

export const BENCH_CHUNK = 10_000;

export type BenchTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string; schema: string };

const COLUMNS = [
  'id', 'serial', 'issuer_id', 'thing_name', 'status', 'profile', 'subject',
  'not_before', 'not_after', 'key_algorithm', 'der', 'created_at', 'revoked_at', 'revocation_reason',
] as const;

function values(c: NewCertificate): unknown[] {
  return [
    c.id, c.serial, c.issuerId, c.thingName, c.status, c.profile, c.subject, c.notBefore.toISOString(),
    c.notAfter.toISOString(), c.keyAlgorithm, Buffer.from(c.der), c.createdAt.toISOString(),
    c.revokedAt?.toISOString() ?? null, c.revocationReason ?? null,
  ];
}

/** Inserts make(0) … make(count - 1) into a store already migrated at `target`. */
export async function bulkInsertCertificatesForBench(
  target: BenchTarget,
  count: number,
  make: (i: number) => NewCertificate,
  onChunk: (done: number) => void = () => {},
): Promise<void> {
  if (target.dialect === 'sqlite') {
    const db = bulkSqlite(target.path);
    try {
      const insert = db.prepare(`insert into certificates (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`);
      const chunk = db.transaction((from: number, to: number) => {
        for (let i = from; i < to; i += 1) insert.run(values(make(i)));
      });
      for (let from = 0; from < count; from += BENCH_CHUNK) {
        chunk.immediate(from, Math.min(count, from + BENCH_CHUNK));
        onChunk(Math.min(count, from + BENCH_CHUNK));
      }
    } finally {
      db.close();
    }
    return;
  }
  const client = await connect(target);
  try {
    // One statement per chunk: each column travels as one array parameter.
    const types = COLUMNS.map((c) => (c === 'der' ? 'bytea[]' : 'text[]'));
    const text = `insert into certificates (${COLUMNS.join(', ')}) select * from unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(', ')})`;
    for (let from = 0; from < count; from += BENCH_CHUNK) {
      const to = Math.min(count, from + BENCH_CHUNK);
      const columns: unknown[][] = COLUMNS.map(() => []);
      for (let i = from; i < to; i += 1) values(make(i)).forEach((v, k) => columns[k]?.push(v));
      await client.query(text, columns);
      onChunk(to);
    }
  } finally {
    await client.end();
  }
}

/** Appends `count` valid, chained audit entries to an empty audit_log (seq 1…count). */
export async function bulkAppendAuditForBench(target: BenchTarget, count: number, at: Date): Promise<void> {
  const columns = ['seq', 'at', 'actor', 'action', 'target', 'details', 'prev_hash', 'hash'] as const;
  let prevHash = AUDIT_GENESIS_HASH;
  const entry = (seq: number): unknown[] => {
    const fields = { at: at.toISOString(), actor: `tok-${seq % 5}`, action: 'certificate.revoke', target: `certificate:${seq}`, details: `{"reason":"keyCompromise","seq":${seq}}` };
    const hash = auditHash({ ...fields, seq, prevHash });
    const row = [seq, fields.at, fields.actor, fields.action, fields.target, fields.details, prevHash, hash];
    prevHash = hash;
    return row;
  };
  if (target.dialect === 'sqlite') {
    const db = bulkSqlite(target.path);
    try {
      const insert = db.prepare(`insert into audit_log (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
      const chunk = db.transaction((from: number, to: number) => {
        for (let seq = from; seq < to; seq += 1) insert.run(entry(seq));
      });
      for (let from = 1; from <= count; from += BENCH_CHUNK) chunk.immediate(from, Math.min(count + 1, from + BENCH_CHUNK));
    } finally {
      db.close();
    }
    return;
  }
  const client = await connect(target);
  try {
    const types = columns.map((c) => (c === 'seq' ? 'bigint[]' : 'text[]'));
    const text = `insert into audit_log (${columns.join(', ')}) select * from unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(', ')})`;
    for (let from = 1; from <= count; from += BENCH_CHUNK) {
      const arrays: unknown[][] = columns.map(() => []);
      for (let seq = from; seq < Math.min(count + 1, from + BENCH_CHUNK); seq += 1) entry(seq).forEach((v, k) => arrays[k]?.push(v));
      await client.query(text, arrays);
    }
  } finally {
    await client.end();
  }
}

/** PostgreSQL only: what autovacuum would do after a bulk load (visibility map for index-only scans, statistics). */
export async function vacuumAnalyzeForBench(target: BenchTarget): Promise<void> {
  if (target.dialect !== 'postgres') return;
  const client = await connect(target);
  try {
    await client.query('vacuum analyze certificates');
  } finally {
    await client.end();
  }
}

/**
 * The plans of the exact statements listCertificates and countCertificates
 * send for `query`: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN
 * (ANALYZE, BUFFERS).
 */
export async function explainCertificateQueriesForBench(
  target: BenchTarget,
  query: CertificateQuery,
): Promise<{ list: string[]; count: string[] }> {
  if (target.dialect === 'sqlite') {
    const raw = new Database(target.path, { readonly: true });
    const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      const explain = (compiled: { sql: string; parameters: readonly unknown[] }) =>
        (raw.prepare(`explain query plan ${compiled.sql}`).all(...compiled.parameters) as Array<{ detail: string }>).map((r) => r.detail);
      return { list: explain(pageQuery(db, query).select.compile()), count: explain(countQuery(db, query).compile()) };
    } finally {
      await db.destroy();
    }
  }
  // A Kysely over an idle pool, only to compile the statements as the store does.
  const pool = new pg.Pool({ connectionString: target.url, max: 1 });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const client = await connect(target);
  try {
    const explain = async (compiled: { sql: string; parameters: readonly unknown[] }) =>
      (await client.query(`explain (analyze, buffers) ${compiled.sql}`, [...compiled.parameters])).rows.map((r: Record<string, string>) => r['QUERY PLAN'] ?? '');
    return { list: await explain(pageQuery(db, query).select.compile()), count: await explain(countQuery(db, query).compile()) };
  } finally {
    await client.end();
    await db.destroy();
  }
}

/**
 * A loading connection: a 512 MiB page cache, because index inserts in
 * random key order (ids are hashes) otherwise thrash SQLite's 2 MiB default,
 * and no fsync per chunk (a crashed load is simply rerun). The store's own
 * connection keeps its durable settings (sqlite.ts).
 */
function bulkSqlite(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('cache_size = -524288');
  db.pragma('synchronous = OFF');
  return db;
}

async function connect(target: Extract<BenchTarget, { dialect: 'postgres' }>): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url, options: `-c search_path=${target.schema}` });
  await client.connect();
  return client;
}
