import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { CertfleetError, type ErrorCode } from '../errors.js';
import type { NewCa, NewCertificate, NewToken } from './records.js';

/* Builders for store tests: valid records with unique keys, overridable per field. */

let sequence = 0;
function next(prefix: string): string {
  sequence += 1;
  return `${prefix}-${sequence}-${randomBytes(3).toString('hex')}`;
}

export const T0 = new Date('2030-01-01T00:00:00.000Z');

export function at(offsetMs: number): Date {
  return new Date(T0.getTime() + offsetMs);
}

/** Every byte value, so a blob that went through a text conversion would not survive. */
export function allBytes(extra = 32): Buffer {
  return Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(extra)]);
}

export function caFixture(overrides: Partial<NewCa> = {}): NewCa {
  return {
    id: next('ca'),
    name: next('CA'),
    parentId: null,
    kind: 'root',
    status: 'active',
    keyAlgorithm: 'EC-P256',
    subject: 'CN=Test Root',
    serial: randomBytes(16).toString('hex'),
    certificateDer: allBytes(),
    notBefore: T0,
    notAfter: at(10 * 365 * 86_400_000),
    pathLen: 1,
    createdAt: T0,
    ...overrides,
  };
}

export function certificateFixture(issuerId: string, overrides: Partial<NewCertificate> = {}): NewCertificate {
  const der = overrides.der ?? allBytes();
  return {
    id: createHash('sha256').update(der).digest('hex'),
    serial: randomBytes(16).toString('hex'),
    issuerId,
    thingName: null,
    status: 'active',
    profile: 'device',
    subject: `CN=${next('device')}`,
    notBefore: T0,
    notAfter: at(365 * 86_400_000),
    keyAlgorithm: 'EC-P256',
    der,
    createdAt: T0,
    ...overrides,
  };
}

export function tokenFixture(overrides: Partial<NewToken> = {}): NewToken {
  return {
    id: next('tok'),
    name: 'admin',
    tokenHash: randomBytes(32).toString('hex'),
    scopes: ['admin', 'operator'],
    createdAt: T0,
    expiresAt: at(86_400_000),
    ...overrides,
  };
}

export function uniqueName(prefix: string): string {
  return next(prefix);
}

/** Asserts the promise rejects with a CertfleetError of that code (and message, if given). */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CertfleetError, `expected CertfleetError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

export const PG_URL = process.env.CERTFLEET_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** `{ skip: reason }` when no PostgreSQL answers within 2 s, so the suite shows as skipped, not passed. */
export async function postgresUnreachable(): Promise<{ skip?: string }> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return {};
  } catch (err) {
    return { skip: `PostgreSQL not reachable at ${new URL(PG_URL).host}: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Drops a PostgreSQL schema made for a test (outside store/, nothing else may speak SQL). */
export async function dropTestSchema(schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`);
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
