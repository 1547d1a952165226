/**
 * CRLReason (RFC 5280 §5.3.1): the names certfleet accepts from operators
 * and the ENUMERATED codes written into CRL entries and OCSP responses.
 * Code 7 is unassigned and never valid.
 */
import { PkiError } from './errors.js';

export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;
export type RevocationReasonCode = (typeof REVOCATION_REASONS)[RevocationReason];

const BY_CODE = new Map<number, RevocationReason>(
  Object.entries(REVOCATION_REASONS).map(([name, code]) => [code, name as RevocationReason]),
);

export function isRevocationReason(s: string): s is RevocationReason {
  return Object.hasOwn(REVOCATION_REASONS, s);
}

export function isReasonCode(n: number): n is RevocationReasonCode {
  return BY_CODE.has(n);
}

/** The code of a reason name, exactly as RFC 5280 spells it (case-sensitive, as the CLI documents). */
export function parseReason(name: string): RevocationReasonCode {
  if (!isRevocationReason(name)) {
    throw new PkiError('lint-failed', `unknown revocation reason "${name}" (one of ${Object.keys(REVOCATION_REASONS).join(', ')})`);
  }
  return REVOCATION_REASONS[name];
}

/** The name of a reason code; throws lint-failed for 7 and anything outside 0–10. */
export function reasonName(code: number): RevocationReason {
  const name = BY_CODE.get(code);
  if (name === undefined) throw new PkiError('lint-failed', `${code} is not a CRLReason code (RFC 5280 §5.3.1)`);
  return name;
}
