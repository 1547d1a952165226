/**
 * Registration codes for proof of possession of an outside CA's key
 * (external-cas.ts). A code is 128 random bits (32 hex characters), handed
 * out once to the token that asked, stored only as its SHA-256 (the code has
 * full entropy, so a slow hash adds nothing, as for API tokens), valid for a
 * limited time (one hour by default) and spent by the registration it proves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { ExternalCaStore } from '../store/index.js';
import type { Actor } from './actor.js';

export const REGISTRATION_CODE_TTL_MS = 3_600_000;

/** 32 lowercase hex characters: what certfleet hands out and a verification certificate's CN must equal. */
export const REGISTRATION_CODE = /^[0-9a-f]{32}$/;

export const hashRegistrationCode = (code: string): string => createHash('sha256').update(code, 'utf8').digest('hex');

export interface RegistrationCodesDeps {
  readonly store: Pick<ExternalCaStore, 'insertRegistrationCode' | 'purgeRegistrationCodes'>;
  readonly now: () => Date;
  /** How long a code is valid, in ms (default one hour). */
  readonly ttlMs?: number;
}

export class RegistrationCodes {
  private readonly ttlMs: number;

  constructor(private readonly deps: RegistrationCodesDeps) {
    this.ttlMs = deps.ttlMs ?? REGISTRATION_CODE_TTL_MS;
  }

  /** A new code for the token behind `actor`; only that token can spend it. */
  async issue(actor: Actor): Promise<{ registrationCode: string; expiresAt: Date }> {
    if (!actor.id.startsWith('token:')) throw new CertfleetError('unauthorized', 'registration codes are issued to API token holders');
    const code = randomBytes(16).toString('hex');
    const now = this.deps.now();
    const expiresAt = new Date(now.getTime() + this.ttlMs);
    await this.deps.store.insertRegistrationCode({ codeHash: hashRegistrationCode(code), tokenId: actor.id, createdAt: now, expiresAt });
    // Codes expired a day ago or more are of no use, not even as evidence (the CA row and audit log keep that).
    await this.deps.store.purgeRegistrationCodes(new Date(now.getTime() - 86_400_000));
    return { registrationCode: code, expiresAt };
  }
}
