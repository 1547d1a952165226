import { CertfleetError } from '../errors.js';

/**
 * Turns driver errors (better-sqlite3 and pg) into the one CertfleetError, so
 * nothing above the store ever sees a driver type or a SQLSTATE.
 */
export type DriverFailure = 'unique' | 'foreign-key' | 'unavailable' | 'other';

// Node socket errors seen by pg when the server is down or the network drops.
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

// SQLite result codes meaning "try again later" or "the file is not usable",
// not "your data is wrong" (https://www.sqlite.org/rescode.html).
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL)/;

// pg-pool and pg raise these without a code.
const PG_CONNECTION_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection timeout/i;

export function classifyDriverError(err: unknown): DriverFailure {
  const code = errorCode(err);
  // better-sqlite3 reports extended result codes as strings.
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique';
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign-key';
  if (SQLITE_UNAVAILABLE.test(code)) return 'unavailable';
  // PostgreSQL SQLSTATE (PostgreSQL docs, Appendix A): 23505 unique_violation,
  // 23503 foreign_key_violation; class 08 connection exception, 53
  // insufficient resources, 57P operator intervention (shutdown, restart),
  // 40001/40P01 serialization failure and deadlock (retryable).
  if (code === '23505') return 'unique';
  if (code === '23503') return 'foreign-key';
  if (/^(08|53|57P)/.test(code) || code === '40001' || code === '40P01') return 'unavailable';
  if (SOCKET_CODES.has(code)) return 'unavailable';
  if (err instanceof Error && PG_CONNECTION_MESSAGES.test(err.message)) return 'unavailable';
  return 'other';
}

/**
 * `subject` names what was being written ("thing pump-7"), so the message
 * reads "thing pump-7 already exists". Driver messages stay in `cause`: they
 * can hold SQL and values that must not reach an API answer.
 */
export function storeError(err: unknown, subject: string): CertfleetError {
  if (err instanceof CertfleetError) return err;
  switch (classifyDriverError(err)) {
    case 'unique':
      return new CertfleetError('conflict', `${subject} already exists`, { cause: err });
    case 'foreign-key':
      return new CertfleetError('not-found', `${subject} refers to a record that does not exist`, {
        cause: err,
      });
    case 'unavailable':
      return new CertfleetError('unavailable', `database unavailable (${errorCode(err) || 'connection'})`, {
        cause: err,
      });
    case 'other':
      return new CertfleetError('internal', `database error on ${subject}`, { cause: err });
  }
}

/** Runs one store operation and translates whatever the driver throws. */
export async function guarded<T>(subject: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw storeError(err, subject);
  }
}

function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null || !('code' in err)) return '';
  return typeof err.code === 'string' ? err.code : '';
}
