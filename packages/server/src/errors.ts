import { PkiError, type PkiErrorCode } from '@certfleet/pki';

/**
 * The server's one error type, with a closed set of codes (as Boulder's
 * berrors). Domain code never picks HTTP statuses: only http/problem.ts maps a
 * code to a status and an RFC 9457 problem document.
 */
export type ErrorCode =
  | PkiErrorCode
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'invalid-state'
  | 'unavailable'
  | 'internal';

export class CertfleetError extends Error {
  override readonly name = 'CertfleetError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Lifts a PkiError into a CertfleetError with the same code; leaves others as they are. */
export function asCertfleetError(err: unknown): unknown {
  if (err instanceof PkiError) return new CertfleetError(err.code, err.message, { cause: err });
  return err;
}
