import { CertfleetError } from '../errors.js';

/*
 * Opaque keyset cursors: base64url of a JSON array [kind, ...key]. The kind
 * keeps a cursor from one listing being replayed against another; callers
 * must not parse cursors, so the format can change without notice.
 */

// A page cursor is a few short keys; refusing anything longer bounds the work
// done on untrusted input before it is rejected.
const MAX_CURSOR_LENGTH = 1024;

export function encodeCursor(kind: string, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([kind, ...key]), 'utf8').toString('base64url');
}

/** Returns exactly `size` strings, or throws 'bad-request'. */
export function decodeCursor(kind: string, cursor: string, size: number): string[] {
  const bad = new CertfleetError('bad-request', 'invalid page cursor');
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) throw bad;
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad;
  }
  if (!Array.isArray(parsed) || parsed.length !== size + 1 || parsed[0] !== kind) throw bad;
  const key = parsed.slice(1);
  if (!key.every((part): part is string => typeof part === 'string')) throw bad;
  return key;
}

/** Page sizes are bounded so one request cannot pull the whole fleet into memory. */
export const MAX_PAGE_SIZE = 1000;

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new CertfleetError('bad-request', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
}
