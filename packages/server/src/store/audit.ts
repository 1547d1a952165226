import { createHash } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { AuditEntry, AuditInput, AuditQuery, AuditVerification } from './audit-records.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import { serialize } from './locks.js';
import type { Page } from './records.js';
import type { AuditLogTable, Db, StoreDialect } from './schema.js';

/*
 * SQL for `audit_log`: an append-only, hash-chained record of every CA and
 * admin action (DESIGN.md, Registry).
 *
 * Chain. Entry n stores prev_hash = hash of entry n-1 (64 "0" for entry 1) and
 *   hash = lowercase hex SHA-256 over the concatenation of eight netstrings
 *   (https://cr.yp.to/proto/netstrings.txt: `<UTF-8 byte length in decimal>:<UTF-8 bytes>,`)
 *   of, in this order:
 *     "certfleet-audit-v1", seq in decimal (no sign, no leading zeros),
 *     at, actor, action, target, details, prev_hash
 *   each exactly as stored in the row. `at` is ISO-8601 UTC with milliseconds
 *   (2030-01-01T00:00:00.000Z); `details` is canonical JSON: object keys sorted
 *   by UTF-16 code units, no whitespace, JSON.stringify's number and string
 *   forms, i.e. RFC 8785 (JCS) for the values accepted here.
 *   Example: seq 1 hashes "18:certfleet-audit-v1,1:1,24:2030-…Z,…,64:000…0,".
 * Order. seq is last + 1, assigned under the chain lock (locks.ts) inside the
 *   transaction of the change, so appends are serialised, the chain never
 *   forks, and seq has no holes unless a row was deleted. The primary key on
 *   seq would refuse a fork even if the lock were bypassed.
 * Verification recomputes every hash from the stored columns, streaming in
 *   pages, and reports the first entry that breaks the chain. It cannot see
 *   entries removed from the end; verifyAuditLog returns the head so it can be
 *   kept elsewhere and compared.
 */

export const AUDIT_GENESIS_HASH = '0'.repeat(64);
const HASH_VERSION = 'certfleet-audit-v1';
/** Rows read per query by verifyAuditLog: memory stays flat whatever the log size. */
export const AUDIT_VERIFY_PAGE = 1000;
const MAX_DETAILS_BYTES = 64 * 1024;
const MAX_FIELD_LENGTH = 1024;
const MAX_DEPTH = 32;

const AUDIT_COLUMNS = ['seq', 'at', 'actor', 'action', 'target', 'details', 'prev_hash', 'hash'] as const;

/** An entry validated and encoded as it will be stored, before seq and hashes are known. */
export interface PreparedAudit {
  at: string;
  actor: string;
  action: string;
  target: string;
  details: string;
}

export function prepareAudit(input: AuditInput, now: () => Date): PreparedAudit {
  for (const field of ['actor', 'action', 'target'] as const) {
    const value: unknown = input[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD_LENGTH) {
      throw new CertfleetError('bad-request', `audit ${field} must be a string of 1 to ${MAX_FIELD_LENGTH} characters`);
    }
  }
  const details = input.details ?? {};
  if (typeof details !== 'object' || details === null || Array.isArray(details)) {
    throw new CertfleetError('bad-request', 'audit details must be an object');
  }
  const text = canonicalJson(details);
  if (Buffer.byteLength(text) > MAX_DETAILS_BYTES) {
    throw new CertfleetError('bad-request', `audit details exceed ${MAX_DETAILS_BYTES} bytes`);
  }
  return { at: toIso(input.at ?? now(), 'audit at'), actor: input.actor, action: input.action, target: input.target, details: text };
}

/** Canonical JSON (see the header). Refuses what JSON cannot hold rather than dropping it silently. */
export function canonicalJson(value: unknown, depth = 0): string {
  const bad = (what: string) => new CertfleetError('bad-request', `audit details: ${what}`);
  if (depth > MAX_DEPTH) throw bad(`nested deeper than ${MAX_DEPTH}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw bad('numbers must be finite');
      return JSON.stringify(value);
    case 'object': {
      if (value instanceof Date) return JSON.stringify(toIso(value, 'audit details date'));
      if (Array.isArray(value)) {
        return `[${value.map((item: unknown) => (item === undefined ? 'null' : canonicalJson(item, depth + 1))).join(',')}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw bad('only plain objects, arrays and scalars');
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort();
      return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key], depth + 1)}`).join(',')}}`;
    }
    default:
      throw bad(`a ${typeof value} is not JSON`);
  }
}

export function auditHash(entry: PreparedAudit & { seq: number; prevHash: string }): string {
  const hash = createHash('sha256');
  const fields = [HASH_VERSION, String(entry.seq), entry.at, entry.actor, entry.action, entry.target, entry.details, entry.prevHash];
  for (const field of fields) {
    const bytes = Buffer.from(field, 'utf8');
    hash.update(`${bytes.length}:`);
    hash.update(bytes);
    hash.update(',');
  }
  return hash.digest('hex');
}

/** Must run inside the transaction of the change it records (transaction.ts, write()). */
export async function appendAudit(trx: Db, dialect: StoreDialect, entry: PreparedAudit): Promise<AuditEntry> {
  await serialize(trx, dialect, 'audit-chain');
  const head = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const seq = head === undefined ? 1 : Number(head.seq) + 1;
  const prevHash = head?.hash ?? AUDIT_GENESIS_HASH;
  const hash = auditHash({ ...entry, seq, prevHash });
  await trx
    .insertInto('audit_log')
    .values({ seq, ...entry, prev_hash: prevHash, hash })
    .execute();
  return auditEntry({ seq, ...entry, prev_hash: prevHash, hash });
}

export async function listAuditLog(db: Db, query: AuditQuery): Promise<Page<AuditEntry>> {
  checkLimit(query.limit);
  const order = query.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new CertfleetError('bad-request', 'order must be asc or desc');
  const kind = `audit-${order}`;
  const after = query.cursor === undefined ? undefined : decodeSeq(decodeCursor(kind, query.cursor, 1)[0] as string);
  const rows = await guarded('audit log', () => {
    let select = db.selectFrom('audit_log').select(AUDIT_COLUMNS);
    if (query.target !== undefined) select = select.where('target', '=', query.target);
    if (query.actor !== undefined) select = select.where('actor', '=', query.actor);
    if (after !== undefined) select = select.where('seq', order === 'asc' ? '>' : '<', after);
    return select.orderBy('seq', order).limit(query.limit + 1).execute();
  });
  const items = rows.slice(0, query.limit).map(auditEntry);
  const last = rows.length > query.limit ? items[query.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(kind, [String(last.seq)]) };
}

/** Streams the whole log in pages of AUDIT_VERIFY_PAGE rows; reports the first entry that breaks the chain. */
export async function verifyAuditLog(db: Db): Promise<AuditVerification> {
  let expected = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let entries = 0;
  for (;;) {
    // No lower bound on the first page: a stray row with seq <= 0 is a break too.
    const rows = await guarded('audit log', () => {
      let select = db.selectFrom('audit_log').select(AUDIT_COLUMNS);
      if (entries > 0) select = select.where('seq', '>', expected - 1);
      return select.orderBy('seq').limit(AUDIT_VERIFY_PAGE).execute();
    });
    for (const row of rows) {
      const seq = Number(row.seq);
      const broken = (reason: 'gap' | 'prev-mismatch' | 'hash-mismatch'): AuditVerification => ({
        ok: false,
        entries,
        firstBroken: { seq, reason },
      });
      // Checked in this order so a deleted entry reads as a gap, an edited
      // one as a hash mismatch, and a re-hashed edit as a prev mismatch on the
      // entry after it.
      if (seq !== expected) return broken('gap');
      if (row.prev_hash !== prevHash) return broken('prev-mismatch');
      if (auditHash({ ...row, seq, prevHash: row.prev_hash }) !== row.hash) return broken('hash-mismatch');
      prevHash = row.hash;
      expected += 1;
      entries += 1;
    }
    if (rows.length < AUDIT_VERIFY_PAGE) break;
    // better-sqlite3 answers synchronously, so without this a million-entry
    // verification would hold the event loop (every other request) for seconds.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { ok: true, entries, head: entries === 0 ? null : { seq: expected - 1, hash: prevHash } };
}

function decodeSeq(text: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(text)) throw new CertfleetError('bad-request', 'invalid page cursor');
  return Number(text);
}

function auditEntry(row: Omit<AuditLogTable, 'seq'> & { seq: number | string }): AuditEntry {
  return {
    seq: Number(row.seq),
    at: fromIso(row.at),
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
