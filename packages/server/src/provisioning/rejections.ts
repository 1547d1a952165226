/**
 * Why fleet provisioning refuses a device, and how that reads on the wire.
 *
 * Domain code throws CertfleetError (STYLE.md rule 4); where the contract
 * needs a finer reason than the error code (an ownership token that is
 * unknown, expired or spent is 'forbidden' to HTTP but InvalidToken to a
 * device), it throws ProvisioningRefusal, a CertfleetError that also carries
 * one reason from a closed set. Only the edges turn either into an answer:
 * `…/rejected` `{ statusCode, errorCode, errorMessage }` here (the AWS IoT
 * fleet-provisioning shape), problem details in http/.
 */
import { asCertfleetError, CertfleetError, type ErrorCode } from '../errors.js';

export type RefusalReason = 'InvalidToken' | 'NotAClaim' | 'HookRefused' | 'Throttled';

const REASON_CODE: Record<RefusalReason, ErrorCode> = {
  InvalidToken: 'forbidden',
  NotAClaim: 'forbidden',
  HookRefused: 'forbidden',
  Throttled: 'unavailable',
};

export class ProvisioningRefusal extends CertfleetError {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(REASON_CODE[reason], message, options);
  }
}

/** The rejected answer's body (DESIGN.md "Fleet provisioning over MQTT"). */
export interface Rejection {
  readonly statusCode: number;
  readonly errorCode: string;
  readonly errorMessage: string;
}

const BY_REASON: Record<RefusalReason, [number, string]> = {
  InvalidToken: [403, 'InvalidToken'],
  NotAClaim: [403, 'AccessDenied'],
  HookRefused: [403, 'AccessDenied'],
  Throttled: [429, 'Throttled'],
};

const BY_CODE: Record<ErrorCode, [number, string]> = {
  'malformed-pem': [400, 'InvalidCsr'],
  'malformed-der': [400, 'InvalidCsr'],
  'malformed-csr': [400, 'InvalidCsr'],
  'bad-signature': [400, 'InvalidCsr'],
  'weak-key': [400, 'InvalidCsr'],
  'unsupported-algorithm': [400, 'InvalidCsr'],
  'lint-failed': [400, 'InvalidCsr'],
  'chain-invalid': [400, 'InvalidPayload'],
  'bad-request': [400, 'InvalidPayload'],
  unauthorized: [401, 'Unauthorized'],
  forbidden: [403, 'AccessDenied'],
  'not-found': [404, 'NotFound'],
  conflict: [409, 'ResourceConflict'],
  'invalid-state': [409, 'ResourceConflict'],
  'payload-too-large': [413, 'PayloadTooLarge'],
  'unsupported-media-type': [415, 'InvalidPayload'],
  unavailable: [503, 'ServiceUnavailable'],
  internal: [500, 'InternalError'],
};

/** Any error as a rejected answer; what is not ours says only "internal error" (the log has the rest). */
export function rejectionOf(err: unknown): Rejection {
  const e = asCertfleetError(err);
  if (e instanceof ProvisioningRefusal) {
    const [statusCode, errorCode] = BY_REASON[e.reason];
    return { statusCode, errorCode, errorMessage: e.message };
  }
  if (e instanceof CertfleetError) {
    const [statusCode, errorCode] = BY_CODE[e.code];
    return { statusCode, errorCode, errorMessage: e.code === 'internal' ? 'internal error' : e.message };
  }
  return { statusCode: 500, errorCode: 'InternalError', errorMessage: 'internal error' };
}
