/**
 * OCSP responses (RFC 6960 §4.2). buildBasicOcspResponse lints and encodes
 * the ResponseData and returns a PreparedOcspResponse, the only thing the
 * signer signs (isPreparedOcspResponse); assembleOcspResponse wraps the
 * signature into a successful OCSPResponse of type id-pkix-ocsp-basic.
 *
 * Nonces and caching. A response without a nonce depends only on the
 * certificate's status, so the responder pre-signs one per certificate (its
 * `cacheable` flag is true) and serves it to every nonce-less request until
 * shortly before its nextUpdate, re-signing when the status changes: the
 * common case (RFC 5019 clients, browsers, OpenSSL with -no_nonce) costs no
 * signature. A request with an RFC 8954 nonce gets the nonce echoed, which
 * means a fresh signature per request; RFC 8954 would let us ignore it, but
 * echoing is what protects a client that asks for replay protection, and the
 * signing cost (~25 µs for P-256 here) is small. Responders that must shed
 * load can drop the nonce and serve the cache instead.
 */
import type { Certificate } from './certificate.js';
import { bitString, explicit, octetString, oid, seq, tlv, Tag } from './der.js';
import { PkiError } from './errors.js';
import { extension, keyIdentifier } from './extensions.js';
import type { SignatureScheme } from './keys.js';
import type { CertId } from './ocsp-request.js';
import { OID } from './oids.js';
import { isReasonCode, REVOCATION_REASONS } from './revocation-reason.js';

export type OcspCertStatus =
  | { readonly good: true }
  | { readonly revoked: { readonly at: Date; readonly reason?: number } }
  | { readonly unknown: true };

export interface SingleResponseInput {
  /** Usually the request's CertID, echoed byte for byte (its `der`). */
  readonly certId: CertId;
  readonly status: OcspCertStatus;
  readonly thisUpdate: Date;
  /** §2.4: when newer information will be available; a cache must not outlive it. */
  readonly nextUpdate?: Date;
}

/** ResponderID (§4.2.1): by the SHA-1 of the responder's public key (what certfleet sends) or by its Name. */
export type ResponderId = { readonly keyHash: Buffer } | { readonly nameDer: Buffer };

export interface OcspResponseInput {
  /** Which key signs: the issuing CA's id or a delegated responder's; opaque here, read by the signer. */
  readonly signerId: string;
  readonly responderId: ResponderId;
  readonly producedAt: Date;
  readonly responses: readonly SingleResponseInput[];
  /** Echoed in responseExtensions (RFC 8954); makes the response unique to its request. */
  readonly nonce?: Buffer;
  /** §4.2.2.2: a delegated responder sends its certificate; a CA signing its own responses sends none. */
  readonly responderCerts?: readonly Certificate[];
}

export interface PreparedOcspResponse {
  readonly signerId: string;
  /** DER ResponseData, the bytes the signer signs. */
  readonly tbs: Buffer;
  readonly certs: readonly Buffer[];
  readonly producedAt: Date;
  /** The earliest nextUpdate of the single responses; a cached copy expires then. */
  readonly nextUpdate?: Date;
  /** True when the response has no nonce and may be served to any request for the same CertIDs. */
  readonly cacheable: boolean;
}

const prepared = new WeakSet<PreparedOcspResponse>();

/** True only for objects made by buildBasicOcspResponse in this process. */
export function isPreparedOcspResponse(p: PreparedOcspResponse): boolean {
  return prepared.has(p);
}

function lint(ok: boolean, why: string): void {
  if (!ok) throw new PkiError('lint-failed', why);
}

/** GeneralizedTime, Zulu, whole seconds: RFC 6960 times are GeneralizedTime only. */
function generalizedTime(d: Date, what: string): Buffer {
  const ms = d instanceof Date ? d.getTime() : NaN;
  lint(Number.isFinite(ms) && d.getUTCFullYear() >= 0 && d.getUTCFullYear() <= 9999, `${what} is not a valid date`);
  return tlv(Tag.GeneralizedTime, Buffer.from(`${d.toISOString().slice(0, 19).replace(/[-T:]/g, '')}Z`, 'ascii'));
}

/** The ResponderID byKey of a responder certificate: SHA-1 of its subjectPublicKey value (§4.2.1). */
export function responderIdFor(cert: Certificate, by: 'key' | 'name' = 'key'): ResponderId {
  return by === 'key' ? { keyHash: keyIdentifier(cert.spki) } : { nameDer: cert.subjectDer };
}

function certStatus(status: OcspCertStatus): Buffer {
  if ('good' in status) return Buffer.from([0x80, 0]); // [0] IMPLICIT NULL
  if ('unknown' in status) return Buffer.from([0x82, 0]); // [2] IMPLICIT UnknownInfo (NULL)
  const { at, reason } = status.revoked;
  const parts = [generalizedTime(at, 'revocationTime')];
  if (reason !== undefined) {
    lint(isReasonCode(reason) && reason !== REVOCATION_REASONS.removeFromCRL, `${reason} is not a revocation reason an OCSP response can carry`);
    parts.push(explicit(0, tlv(0x0a, Buffer.from([reason])))); // [0] EXPLICIT CRLReason
  }
  return tlv(0xa1, ...parts); // [1] IMPLICIT RevokedInfo
}

export function buildBasicOcspResponse(input: OcspResponseInput): PreparedOcspResponse {
  lint(input.responses.length > 0, 'an OCSP response needs at least one SingleResponse');
  let earliestNext: Date | undefined;
  const singles = input.responses.map((r) => {
    const parts = [r.certId.der, certStatus(r.status), generalizedTime(r.thisUpdate, 'thisUpdate')];
    if (r.nextUpdate) {
      lint(r.nextUpdate.getTime() > r.thisUpdate.getTime(), 'nextUpdate must be after thisUpdate');
      parts.push(explicit(0, generalizedTime(r.nextUpdate, 'nextUpdate')));
      if (!earliestNext || r.nextUpdate < earliestNext) earliestNext = r.nextUpdate;
    }
    return seq(...parts);
  });
  const rid = input.responderId;
  // ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }: EXPLICIT, the module's default.
  const responderId = 'keyHash' in rid ? explicit(2, octetString(rid.keyHash)) : explicit(1, rid.nameDer);
  lint(!('keyHash' in rid) || rid.keyHash.length === 20, 'ResponderID byKey must be a SHA-1 hash');
  const fields = [responderId, generalizedTime(input.producedAt, 'producedAt'), seq(...singles)];
  if (input.nonce) {
    lint(input.nonce.length >= 1 && input.nonce.length <= 32, 'a nonce must be 1 to 32 octets (RFC 8954 §2.1)');
    fields.push(explicit(1, seq(extension(OID.ocspNonce, false, octetString(input.nonce)))));
  }
  const p: PreparedOcspResponse = Object.freeze({
    signerId: input.signerId,
    tbs: seq(...fields), // version v1 is the DEFAULT and so omitted
    certs: Object.freeze((input.responderCerts ?? []).map((c) => c.der)),
    producedAt: input.producedAt,
    ...(earliestNext ? { nextUpdate: earliestNext } : {}),
    cacheable: input.nonce === undefined,
  });
  prepared.add(p);
  return p;
}

/** OCSPResponse { successful, [0] ResponseBytes { id-pkix-ocsp-basic, OCTET STRING BasicOCSPResponse } }. */
export function assembleOcspResponse(p: PreparedOcspResponse, scheme: SignatureScheme, signature: Uint8Array): Buffer {
  if (!isPreparedOcspResponse(p)) throw new PkiError('lint-failed', 'only a response made by buildBasicOcspResponse can be assembled');
  const basic = seq(p.tbs, scheme.algorithmId, bitString(signature), ...(p.certs.length > 0 ? [explicit(0, seq(...p.certs))] : []));
  return seq(tlv(0x0a, Buffer.from([0])), explicit(0, seq(oid(OID.ocspBasic), octetString(basic))));
}

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

const ERROR_CODES: Record<OcspErrorStatus, number> = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 };

/** An unsuccessful OCSPResponse: the status alone, no responseBytes (§4.2.1); never signed. */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  const code = ERROR_CODES[status];
  if (code === undefined) throw new PkiError('lint-failed', `${status} is not an OCSP error status`);
  return seq(tlv(0x0a, Buffer.from([code])));
}
