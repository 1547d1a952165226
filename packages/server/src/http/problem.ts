/**
 * The edge where errors become HTTP: RFC 9457 problem details with a stable
 * `code`. Only this file chooses status codes (STYLE.md rule 4).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { asCertfleetError, CertfleetError, type ErrorCode } from '../errors.js';

const STATUS: Record<ErrorCode, number> = {
  'malformed-pem': 400,
  'malformed-der': 400,
  'malformed-csr': 400,
  'bad-signature': 400,
  'weak-key': 400,
  'unsupported-algorithm': 400,
  'lint-failed': 422,
  'chain-invalid': 422,
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'invalid-state': 409,
  unavailable: 503,
  internal: 500,
};

const TITLE: Partial<Record<ErrorCode, string>> = {
  'malformed-csr': 'Malformed certificate signing request',
  'bad-signature': 'Signature does not verify',
  'weak-key': 'Key too weak',
  'unsupported-algorithm': 'Algorithm not accepted',
  'lint-failed': 'Certificate would break the profile',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  'not-found': 'Not found',
  conflict: 'Conflict',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
}

/** Fastify's own errors, by their code, mapped onto ours. */
function fromFastify(err: FastifyError): CertfleetError | undefined {
  if (err.validation) return new CertfleetError('bad-request', err.message);
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CertfleetError('payload-too-large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CertfleetError('unsupported-media-type', err.message);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CertfleetError('bad-request', 'Content-Length does not match the body');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CertfleetError('bad-request', 'request body is not valid JSON');
    default:
      if (err.statusCode === 404) return new CertfleetError('not-found', err.message);
      if (err.statusCode === 400 || err instanceof SyntaxError) return new CertfleetError('bad-request', err.message);
      if (err.statusCode === 415) return new CertfleetError('unsupported-media-type', err.message);
      if (err.statusCode === 413) return new CertfleetError('payload-too-large', err.message);
      return undefined;
  }
}

export function toProblem(raw: unknown, instance?: string): Problem {
  const lifted = asCertfleetError(raw);
  const err = lifted instanceof CertfleetError ? lifted : (fromFastify(lifted as FastifyError) ?? new CertfleetError('internal', 'internal error'));
  const status = STATUS[err.code];
  return {
    type: `https://certfleet.dev/problems/${err.code}`,
    title: TITLE[err.code] ?? err.code.replace(/-/g, ' ').replace(/^./, (c) => c.toUpperCase()),
    status,
    code: err.code,
    // Internal errors say nothing of their cause to the caller; the log has it.
    detail: err.code === 'internal' ? 'internal error' : err.message,
    ...(instance ? { instance } : {}),
  };
}

export function problemHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const problem = toProblem(err, req.url);
  if (problem.status >= 500) req.log.error({ err }, 'request failed');
  else req.log.info({ code: problem.code, detail: problem.detail }, 'request refused');
  void reply.code(problem.status).type('application/problem+json').send(problem);
}
