import { CertfleetError } from '../errors.js';
import { fromIso, fromIsoOrNull, toIso, toIsoOrNull } from './columns.js';
import type { AuditInput } from './audit-records.js';
import { guarded } from './driver-errors.js';
import type { NewToken, TokenRecord } from './records.js';
import type { ApiTokensTable, Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/* SQL for `api_tokens`. */

const TOKEN_COLUMNS = [
  'id',
  'name',
  'token_hash',
  'scopes',
  'created_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
] as const;

/**
 * last_used_at is advisory (it shows stale tokens), so a use is written at
 * most once per this interval: every API request would otherwise cost a
 * synchronous, fsync'ed write on the authentication path.
 */
export const TOUCH_INTERVAL_MS = 60_000;

export async function insertToken(ctx: StoreContext, token: NewToken, audit?: AuditInput): Promise<void> {
  const row: ApiTokensTable = {
    id: token.id,
    name: token.name,
    token_hash: token.tokenHash,
    scopes: joinScopes(token.scopes),
    created_at: toIso(token.createdAt, 'createdAt'),
    expires_at: toIsoOrNull(token.expiresAt, 'expiresAt'),
    revoked_at: null,
    last_used_at: null,
  };
  await write(ctx, `token ${token.id}`, audit, (trx) => trx.insertInto('api_tokens').values(row).execute());
}

export async function findTokenByHash(db: Db, tokenHash: string): Promise<TokenRecord | undefined> {
  const row = await guarded('token', () =>
    db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('token_hash', '=', tokenHash).executeTakeFirst(),
  );
  return row && tokenRecord(row);
}

export async function listTokens(db: Db): Promise<TokenRecord[]> {
  const rows = await guarded('token list', () =>
    db.selectFrom('api_tokens').select(TOKEN_COLUMNS).orderBy('created_at').orderBy('id').execute(),
  );
  return rows.map(tokenRecord);
}

/** Idempotent; the audit entry, if given, is appended on every call (it records the request). */
export async function revokeToken(ctx: StoreContext, id: string, at: Date, audit?: AuditInput): Promise<void> {
  const revokedAt = toIso(at, 'revokedAt');
  await write(ctx, `token ${id}`, audit, async (trx) => {
    const result = await trx
      .updateTable('api_tokens')
      .set({ revoked_at: revokedAt })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) return;
    // Nothing updated: either already revoked (fine) or no such token.
    const existing = await trx.selectFrom('api_tokens').select('id').where('id', '=', id).executeTakeFirst();
    if (existing === undefined) throw new CertfleetError('not-found', `token ${id} not found`);
  });
}

/** A no-op for an unknown id: finding out would cost a read on every request. */
export async function touchToken(db: Db, id: string, at: Date): Promise<void> {
  const usedAt = toIso(at, 'lastUsedAt');
  const staleBefore = toIso(new Date(at.getTime() - TOUCH_INTERVAL_MS), 'lastUsedAt');
  await guarded(`token ${id}`, () =>
    db
      .updateTable('api_tokens')
      .set({ last_used_at: usedAt })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', staleBefore)]))
      .execute(),
  );
}

// Stored comma-separated (schema v1), so a scope can hold no comma.
function joinScopes(scopes: string[]): string {
  for (const scope of scopes) {
    if (scope === '' || scope.includes(',')) {
      throw new CertfleetError('bad-request', `invalid token scope ${JSON.stringify(scope)}`);
    }
  }
  return scopes.join(',');
}

function tokenRecord(row: ApiTokensTable): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    tokenHash: row.token_hash,
    scopes: row.scopes === '' ? [] : row.scopes.split(','),
    createdAt: fromIso(row.created_at),
    expiresAt: fromIsoOrNull(row.expires_at),
    revokedAt: fromIsoOrNull(row.revoked_at),
    lastUsedAt: fromIsoOrNull(row.last_used_at),
  };
}
