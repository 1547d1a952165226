/**
 * The agent's one error type (as @certfleet/pki's PkiError and the server's
 * CertfleetError): a closed union of codes callers can switch on, so a CLI or
 * a renewal loop decides "retry", "re-provision" or "give up" without parsing
 * messages.
 */
export type AgentErrorCode =
  | 'bad-input'
  | 'key-exists'
  | 'key-missing'
  | 'key-exposed'
  | 'key-mismatch'
  | 'slot-empty'
  | 'slot-corrupt'
  | 'trust-root-needed'
  | 'trust-root-unknown'
  | 'not-a-ca'
  | 'chain-invalid'
  | 'expired-before-floor'
  | 'rejected'
  | 'bad-response'
  | 'timeout'
  | 'unreachable'
  | 'token-error'
  | 'pending';

/** What the platform said when it refused a request (`…/rejected`, DESIGN.md "Fleet provisioning over MQTT"). */
export interface Rejection {
  readonly statusCode: number;
  readonly errorCode: string;
  readonly errorMessage: string;
}

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown; rejection?: Rejection },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.rejection = options?.rejection;
  }

  /** Set only for code 'rejected': the server's own answer, untouched. */
  readonly rejection: Rejection | undefined;
}
