/**
 * The one error type of the pki package. Codes form a closed union so callers
 * can switch on them; the server maps them to HTTP or MQTT answers at its edges.
 */
export type PkiErrorCode =
  | 'malformed-pem'
  | 'malformed-der'
  | 'malformed-csr'
  | 'bad-signature'
  | 'weak-key'
  | 'unsupported-algorithm'
  | 'lint-failed'
  | 'chain-invalid';

export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
