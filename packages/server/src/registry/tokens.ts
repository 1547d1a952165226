/**
 * Operator API tokens. A token is 32 random bytes shown once; only its
 * SHA-256 is stored (the token has 256 bits of entropy, so a slow hash adds
 * nothing). Lookup is by hash, and the stored hash is compared again in
 * constant time so that no timing of the comparison leaks.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { TokenRecord, TokenStore } from '../store/index.js';

export type Scope = 'admin' | 'operator' | 'auditor' | 'provisioner';
export const SCOPES: readonly Scope[] = ['admin', 'operator', 'auditor', 'provisioner'];

const PREFIX = 'cf_';

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export function parseScopes(s: string | readonly string[]): Scope[] {
  const list = (typeof s === 'string' ? s.split(',') : [...s]).map((x) => x.trim()).filter(Boolean);
  if (list.length === 0) throw new CertfleetError('bad-request', `a token needs at least one scope (${SCOPES.join(', ')})`);
  for (const x of list) if (!(SCOPES as readonly string[]).includes(x)) throw new CertfleetError('bad-request', `unknown scope ${x} (${SCOPES.join(', ')})`);
  return [...new Set(list)] as Scope[];
}

export class Tokens {
  constructor(
    private readonly store: TokenStore,
    private readonly now: () => Date,
  ) {}

  /** Creates a token; the returned secret is the only copy there will ever be. */
  async create(name: string, scopes: readonly Scope[], expiresAt: Date | null = null): Promise<{ token: string; record: TokenRecord }> {
    const token = PREFIX + randomBytes(32).toString('base64url');
    const record: TokenRecord = {
      id: `tok-${randomBytes(6).toString('hex')}`,
      name,
      tokenHash: hashToken(token),
      scopes: [...scopes],
      createdAt: this.now(),
      expiresAt,
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.store.insertToken(record);
    return { token, record };
  }

  /** The token's record if it is valid now; 'unauthorized' otherwise, with the same message for every failure. */
  async authenticate(token: string | undefined): Promise<TokenRecord> {
    const denied = () => new CertfleetError('unauthorized', 'a valid bearer token is required');
    if (!token || !token.startsWith(PREFIX) || token.length > 200) throw denied();
    const hash = hashToken(token);
    const rec = await this.store.findTokenByHash(hash);
    if (!rec || !timingSafeEqual(Buffer.from(rec.tokenHash, 'hex'), Buffer.from(hash, 'hex'))) throw denied();
    const now = this.now();
    if (rec.revokedAt || (rec.expiresAt && rec.expiresAt <= now)) throw denied();
    // Last use is kept to the minute, so the auth path writes at most once a minute per token.
    if (!rec.lastUsedAt || now.getTime() - rec.lastUsedAt.getTime() > 60_000) await this.store.touchToken(rec.id, now);
    return rec;
  }
}

/** True if a token with `have` may act where any of `need` is required; admin may do everything. */
export function allows(have: readonly string[], need: readonly Scope[]): boolean {
  return have.includes('admin') || need.some((s) => have.includes(s));
}
