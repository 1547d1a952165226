import { sql } from 'kysely';
import type { Db, StoreDialect } from './schema.js';

/*
 * Writers that read before they write (the audit chain head, the group tree
 * for cycle and depth checks) must not interleave.
 *
 * SQLite: every store transaction starts with BEGIN IMMEDIATE (sqlite.ts), so
 * it holds the database's single write lock from its first statement; other
 * processes wait (busy_timeout) and in-process callers queue on Kysely's
 * connection mutex. Nothing more to do.
 *
 * PostgreSQL: a transaction-scoped advisory lock, released at commit or
 * rollback. In READ COMMITTED every statement after the lock sees all commits
 * of the previous holder. The second key is the schema, so two certfleet
 * schemas in one database (tests, tenants) do not queue behind each other.
 */

// Arbitrary int4 constants ("cf" + n); only unique among our own advisory locks.
const LOCK_CLASS = { 'audit-chain': 0x63660001, 'group-tree': 0x63660002 } as const;

export type WriterLock = keyof typeof LOCK_CLASS;

export async function serialize(trx: Db, dialect: StoreDialect, lock: WriterLock): Promise<void> {
  if (dialect !== 'postgres') return;
  if (!trx.isTransaction) throw new Error(`${lock} lock taken outside a transaction`);
  await sql`select pg_advisory_xact_lock(${sql.lit(LOCK_CLASS[lock])}, hashtext(current_schema()))`.execute(trx);
}
