/**
 * Renewal after expiry (docs/device-protocol.md "Renewal after expiry"): a
 * device that was offline past its certificate's notAfter cannot connect
 * over MQTT any more (the endpoint admits only valid certificates), so it
 * asks on the api port, where its CA's policy may still allow it:
 * `POST /api/v1/renew-expired` `{ "csr": PEM }` with the expired
 * certificate as TLS client certificate (the handshake proves possession of
 * its key). The answer is 201 `{ certificateId, certificatePem, chainPem }`;
 * `id`, the name the certificate route uses, is accepted as well. The CSR
 * carries the old subject and names and a new key made in the next slot.
 *
 * The server's refusals say what to do next:
 *  - a refusal for good (403 with `fallback: "claim"`: renewal after expiry
 *    off for its CA, expired too long ago, revoked, deactivated) is final
 *    for this certificate: the caller provisions afresh by claim;
 *  - 409 `NotExpired`: the platform's clock says the certificate is still
 *    valid (the device's clock runs ahead), so the caller renews the
 *    ordinary way, over MQTT or EST, with the same certificate;
 *  - anything else (unreachable, 5xx, 429) is worth retrying, with the same
 *    next key.
 */
import { Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { rejectionOf, verifiedRequest, type VerifiedResponse } from '../http/verified-request.js';
import type { Identity } from '../slots.js';
import type { RenewalSlots } from './renewal-types.js';

export const RENEW_EXPIRED_PATH = '/api/v1/renew-expired';

export interface ExpiredRenewal {
  readonly slots: RenewalSlots;
  /** https://host:port of the api port. */
  readonly api: string;
  readonly verifyServer: (chainPems: string[]) => void;
  readonly timeoutMs?: number;
}

/** A refusal of `POST /api/v1/renew-expired`, with the problem document's `reason` and `fallback` when it had them. */
export class ExpiredRenewalRefused extends AgentError {
  constructor(
    base: AgentError,
    readonly reason: string | undefined,
    readonly fallback: string | undefined,
  ) {
    super('rejected', base.message, base.rejection ? { rejection: base.rejection } : undefined);
  }
}

const statusOf = (err: unknown) => (err instanceof AgentError ? err.rejection?.statusCode : undefined);

/**
 * The server says this certificate is still valid (409 `NotExpired`): the
 * device's clock is ahead of the platform's, and the ordinary renewal over
 * MQTT or EST works with the certificate as it is.
 */
export function isNotExpired(err: unknown): boolean {
  if (statusOf(err) !== 409) return false;
  return !(err instanceof ExpiredRenewalRefused) || err.reason === undefined || err.reason === 'NotExpired';
}

/** The server refused renewal after expiry for good: the device must provision afresh. */
export function isFallbackRefusal(err: unknown): boolean {
  if (err instanceof ExpiredRenewalRefused && err.fallback === 'claim') return true;
  const status = statusOf(err);
  // Without `fallback`: 403 (policy says no), 404 (certificate unknown), 410 (gone), 422 (not acceptable)
  // cannot succeed later either. 409 is NotExpired (renew the ordinary way), 400 a bug in this CSR,
  // 401/429/5xx are transient.
  return status === 403 || status === 404 || status === 410 || status === 422;
}

function refusal(res: VerifiedResponse): ExpiredRenewalRefused {
  let problem: { reason?: unknown; fallback?: unknown } = {};
  try {
    problem = JSON.parse(res.body) as typeof problem;
  } catch {
    // Not a problem document: the status alone decides (isFallbackRefusal).
  }
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return new ExpiredRenewalRefused(rejectionOf(`POST ${RENEW_EXPIRED_PATH}`, res), text(problem.reason), text(problem.fallback));
}

/** Writes the renewed identity into next and returns it; the caller tries it and promotes. */
export async function renewExpired(r: ExpiredRenewal): Promise<Identity & { certificateId: string }> {
  const current = await r.slots.current();
  if (!current) throw new AgentError('slot-empty', 'no current certificate to renew');
  if ((await r.slots.nextState()) === 'complete') await r.slots.discardNext();
  const key = await r.slots.nextKey();
  const csr = key.createCsr(current.certificate.subjectAttributes(), current.certificate.subjectAltNames());
  const res = await verifiedRequest({
    url: new URL(RENEW_EXPIRED_PATH, r.api).href,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ csr }),
    certificatePem: current.certificatePem + current.chainPem,
    keyPem: current.key.tlsKeyPem(),
    verifyServer: r.verifyServer,
    ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}),
  });
  if (res.status < 200 || res.status > 299) throw refusal(res);
  // `certificateId` is what the route sends; `id` is the certificate route's name for it.
  let body: { id?: unknown; certificateId?: unknown; certificatePem?: unknown; chainPem?: unknown };
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch (err) {
    throw new AgentError('bad-response', `the answer of ${RENEW_EXPIRED_PATH} is not JSON`, { cause: err });
  }
  if (typeof body.certificatePem !== 'string') throw new AgentError('bad-response', `the answer of ${RENEW_EXPIRED_PATH} lacks certificatePem`);
  let cert: Certificate;
  try {
    cert = Certificate.fromPem(body.certificatePem);
  } catch (err) {
    throw new AgentError('bad-response', `certificatePem is not a certificate: ${(err as Error).message}`, { cause: err });
  }
  if (!key.matches(cert)) throw new AgentError('bad-response', 'the renewed certificate does not certify the new key');
  const next = await r.slots.writeNext({ certificatePem: body.certificatePem, chainPem: typeof body.chainPem === 'string' ? body.chainPem : '' });
  const id = typeof body.certificateId === 'string' ? body.certificateId : typeof body.id === 'string' ? body.id : cert.fingerprint();
  return { ...next, certificateId: id };
}
