/**
 * Revocation with an RFC 5280 §5.3.1 reason. certificateHold can be lifted;
 * every other revocation is final. Revoking a CA makes everything under it
 * untrusted: the broker stops admitting through it, OCSP answers revoked
 * (cACompromise unless another reason is given) and the parent's CRL lists it.
 */
import { isRevocationReason, type RevocationReason } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { Actor } from '../registry/actor.js';
import type { Authorities } from '../registry/authorities.js';
import type { CertificateRegistry } from '../registry/certificate-registry.js';
import type { CaRecord, CertificateRecord, SettingsStore } from '../store/index.js';

/** Reasons an operator may give; removeFromCRL belongs to delta CRLs only, and aACompromise to attribute certificates. */
const ALLOWED: ReadonlySet<string> = new Set([
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
]);

export function checkReason(reason: unknown): RevocationReason {
  if (typeof reason !== 'string' || !isRevocationReason(reason) || !ALLOWED.has(reason)) {
    throw new CertfleetError('bad-request', `revocation reason must be one of ${[...ALLOWED].join(', ')}`);
  }
  return reason;
}

export const caRevocationSetting = (caId: string): string => `ca.revocation.${caId}`;

export interface CaRevocation {
  readonly at: Date;
  readonly reason: RevocationReason;
}

export interface RevokerDeps {
  readonly certificates: CertificateRegistry;
  readonly authorities: Authorities;
  readonly settings: SettingsStore;
  readonly now: () => Date;
}

export class Revoker {
  constructor(private readonly deps: RevokerDeps) {}

  async revoke(actor: Actor, idOrSerial: string, reason: unknown, note?: string): Promise<CertificateRecord> {
    const r = checkReason(reason);
    const c = await this.deps.certificates.find(idOrSerial);
    if (c.status === 'revoked') throw new CertfleetError('invalid-state', `certificate ${c.id} is already revoked (${c.revocationReason ?? 'unspecified'})`);
    return this.deps.certificates.changeStatus(actor, c.id, 'revoked', { revocationReason: r, ...(note ? { reason: note } : {}) });
  }

  /** Lifts a certificateHold (RFC 5280 §5.3.1): the certificate is active again and leaves the CRL. */
  async release(actor: Actor, idOrSerial: string): Promise<CertificateRecord> {
    const c = await this.deps.certificates.find(idOrSerial);
    if (c.status !== 'revoked' || c.revocationReason !== 'certificateHold') {
      throw new CertfleetError('invalid-state', 'only a certificate on hold (revoked with certificateHold) can be released');
    }
    return this.deps.certificates.changeStatus(actor, c.id, 'active', { reason: 'hold released' });
  }

  async revokeCa(actor: Actor, idOrName: string, reason: unknown = 'cACompromise'): Promise<CaRecord> {
    const r = checkReason(reason);
    const ca = await this.deps.authorities.get(idOrName);
    if (ca.status === 'revoked') throw new CertfleetError('invalid-state', `CA ${ca.name} is already revoked`);
    // The time and reason are kept before the status changes, so the parent's next CRL can list the CA.
    await this.deps.settings.putSetting(caRevocationSetting(ca.id), JSON.stringify({ at: this.deps.now().toISOString(), reason: r }));
    return this.deps.authorities.setStatus(actor, ca.id, 'revoked');
  }

  async caRevocation(caId: string): Promise<CaRevocation | undefined> {
    const raw = await this.deps.settings.getSetting(caRevocationSetting(caId));
    if (!raw) return undefined;
    const v = JSON.parse(raw) as { at: string; reason: RevocationReason };
    return { at: new Date(v.at), reason: v.reason };
  }
}
