/**
 * Which certificate status changes are allowed, and who may make them.
 * The store only compare-and-sets; this table decides (as AWS IoT's
 * UpdateCertificate does): `revoked` is final, `pending-*` are entered only by
 * the system (JITR, transfer), operators may activate a pending certificate.
 */
import type { CertificateStatus } from '../store/index.js';
import { CertfleetError } from '../errors.js';

export type StatusActor = 'operator' | 'system';

const OPERATOR: Record<CertificateStatus, readonly CertificateStatus[]> = {
  active: ['inactive', 'revoked'],
  inactive: ['active', 'revoked'],
  'pending-activation': ['active', 'inactive', 'revoked'],
  'pending-transfer': ['inactive', 'revoked'],
  revoked: [],
};

const SYSTEM: Record<CertificateStatus, readonly CertificateStatus[]> = {
  active: ['inactive', 'revoked', 'pending-transfer'],
  inactive: ['active', 'revoked', 'pending-transfer'],
  'pending-activation': ['active', 'inactive', 'revoked'],
  'pending-transfer': ['active', 'inactive', 'revoked'],
  revoked: [],
};

export function canTransition(from: CertificateStatus, to: CertificateStatus, actor: StatusActor): boolean {
  return (actor === 'system' ? SYSTEM : OPERATOR)[from].includes(to);
}

/**
 * Throws 'invalid-state' with the reason when the change is not allowed.
 * `onHold`: the certificate is revoked with reason certificateHold, the one
 * revocation RFC 5280 §5.3.1 lets be lifted (back to active).
 */
export function checkTransition(from: CertificateStatus, to: CertificateStatus, actor: StatusActor, onHold = false): void {
  if (from === to) throw new CertfleetError('invalid-state', `the certificate is already ${to}`);
  if (from === 'revoked' && onHold && to === 'active') return;
  if (from === 'revoked') throw new CertfleetError('invalid-state', 'a revoked certificate stays revoked (only certificateHold can be lifted)');
  if (!canTransition(from, to, actor)) {
    const why = to.startsWith('pending-') && actor === 'operator' ? ' (pending states are set by certfleet itself)' : '';
    throw new CertfleetError('invalid-state', `a certificate cannot go from ${from} to ${to}${why}`);
  }
}
