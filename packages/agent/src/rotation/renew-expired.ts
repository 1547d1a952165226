/**
 * Renewal after expiry: a device that was offline past its certificate's
 * notAfter cannot connect over MQTT any more (the endpoint admits only valid
 * certificates), so it asks on the api port, where policy may still allow
 * it: `POST /api/v1/renew-expired` `{ "csr": PEM }` with the expired
 * certificate as TLS client certificate (the handshake proves possession of
 * its key). The answer is the certificate route's
 * `{ id, certificatePem, chainPem }`. The CSR carries the old subject and
 * names and a new key made in the next slot.
 *
 * A refusal (renewal after expiry off for its CA, expired too long ago,
 * revoked) is final for this certificate: the caller falls back to the
 * claim flow. Anything else (unreachable, 5xx) is worth retrying, with the
 * same next key.
 */
import { Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { rejectionOf, verifiedRequest } from '../http/verified-request.js';
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

/** The server refused renewal after expiry for good: the device must provision afresh. */
export function isFallbackRefusal(err: unknown): boolean {
  const status = err instanceof AgentError ? err.rejection?.statusCode : undefined;
  // 403 (policy says no), 404 (certificate unknown), 409/410 (not expired / gone), 422 (not acceptable):
  // the same request cannot succeed later. 400 is a bug in this CSR, 401/429/5xx are transient.
  return status === 403 || status === 404 || status === 409 || status === 410 || status === 422;
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
  if (res.status < 200 || res.status > 299) throw rejectionOf(`POST ${RENEW_EXPIRED_PATH}`, res);
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
