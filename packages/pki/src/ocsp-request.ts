/**
 * OCSP requests (RFC 6960 §4.1) and CertIDs. Requests arrive unauthenticated
 * from the network (POST /ocsp, GET /ocsp/{b64}), so they are read with the
 * strict DER reader: anything that is not exactly
 *   OCSPRequest { TBSRequest { [0] version?, [1] requestorName?,
 *     requestList SEQUENCE OF Request { CertID, [0] exts? }, [2] exts? },
 *     [0] optionalSignature? }
 * throws PkiError('malformed-der'); the responder answers malformedRequest.
 *
 * A CertID hashed with anything but SHA-1 or SHA-256 throws
 * PkiError('unsupported-algorithm'), as does a critical extension we do not
 * understand (§4.4 lets unknown non-critical ones be ignored). Both are
 * well-formed requests we cannot answer; the responder should log them apart
 * from garbage and answer malformedRequest too (RFC 6960 §2.3 has no better
 * status).
 */
import { createHash } from 'node:crypto';
import type { Certificate } from './certificate.js';
import { decodeExtensions, decodeUint } from './crl-der.js';
import { children, content, decodeOid, type Element, expect, nullValue, octetString, oid, readElement, seq, slice, Tag, uintBytes } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';

export type OcspHashAlgorithm = 'sha1' | 'sha256';

const HASHES: Record<string, { name: OcspHashAlgorithm; size: number }> = {
  [OID.sha1]: { name: 'sha1', size: 20 },
  [OID.sha256]: { name: 'sha256', size: 32 },
};

/** CertID (§4.1.1): which certificate a request asks about. */
export interface CertId {
  readonly hashAlgorithm: OcspHashAlgorithm;
  /** Hash of the issuer's DER subject Name. */
  readonly issuerNameHash: Buffer;
  /** Hash of the issuer's subjectPublicKey BIT STRING value. */
  readonly issuerKeyHash: Buffer;
  /** Lowercase hex of the serial's magnitude, as Certificate.serial() gives it. */
  readonly serial: string;
  /** The CertID exactly as received: a response echoes these bytes (§4.2.1). */
  readonly der: Buffer;
}

export interface OcspRequest {
  readonly requests: readonly CertId[];
  /**
   * The RFC 8954 nonce octets when the request carries one of 1–32 octets.
   * Outside that range it is dropped (§2.1 lets a responder answer without
   * it), which also lets such a request be served from the cache.
   */
  readonly nonce?: Buffer;
  /** Whether optionalSignature was present. certfleet never requires nor verifies it. */
  readonly signed: boolean;
}

const bad = (why: string): never => {
  throw new PkiError('malformed-der', `OCSP request: ${why}`);
};

function hashAlgorithm(buf: Buffer, el: Element): { name: OcspHashAlgorithm; size: number } {
  if (el.tag !== Tag.Sequence) bad('hashAlgorithm must be an AlgorithmIdentifier');
  const [oidEl, params, extra] = children(buf, el);
  if (!oidEl || oidEl.tag !== Tag.Oid || extra) bad('bad hashAlgorithm');
  // RFC 3279 §2.1, RFC 5754 §2: parameters absent or NULL.
  if (params && !(params.tag === Tag.Null && params.end === params.contentStart)) bad('hashAlgorithm parameters must be absent or NULL');
  const id = decodeOid(buf, oidEl!);
  const h = HASHES[id];
  if (!h) throw new PkiError('unsupported-algorithm', `OCSP CertID hash algorithm ${id} is not supported (SHA-1 and SHA-256 are)`);
  return h;
}

function decodeCertId(buf: Buffer, el: Element): CertId {
  if (el.tag !== Tag.Sequence) bad('CertID must be a SEQUENCE');
  const [algEl, nameEl, keyEl, serialEl, extra] = children(buf, el);
  if (!algEl || !nameEl || !keyEl || !serialEl || extra) bad('CertID must have four fields');
  const alg = hashAlgorithm(buf, algEl!);
  if (nameEl!.tag !== Tag.OctetString || keyEl!.tag !== Tag.OctetString) bad('CertID hashes must be OCTET STRINGs');
  const issuerNameHash = Buffer.from(content(buf, nameEl!));
  const issuerKeyHash = Buffer.from(content(buf, keyEl!));
  if (issuerNameHash.length !== alg.size || issuerKeyHash.length !== alg.size) bad(`CertID hashes must be ${alg.size} octets for ${alg.name}`);
  const serial = decodeUint(buf, serialEl!, 'CertID serialNumber').toString('hex');
  return { hashAlgorithm: alg.name, issuerNameHash, issuerKeyHash, serial, der: Buffer.from(slice(buf, el)) };
}

/** Request and singleRequest extensions: the nonce is read, unknown critical ones refused. */
function readExtensions(buf: Buffer, el: Element): Buffer | undefined {
  let nonce: Buffer | undefined;
  for (const ext of decodeExtensions(buf, el)) {
    if (ext.id === OID.ocspNonce) {
      // RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)), inside extnValue.
      const v = ext.value;
      const inner = v.length >= 2 ? expect(v, 0, Tag.OctetString, v.length, 'Nonce') : undefined;
      if (!inner || inner.end !== v.length) bad('nonce must be an OCTET STRING');
      const octets = content(v, inner!);
      if (octets.length >= 1 && octets.length <= 32) nonce = Buffer.from(octets);
    } else if (ext.critical) {
      throw new PkiError('unsupported-algorithm', `critical OCSP request extension ${ext.id} is not supported`);
    }
  }
  return nonce;
}

/** Parses a DER OCSPRequest strictly (see the file comment for what throws). */
export function parseOcspRequest(input: Uint8Array): OcspRequest {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const top = expect(buf, 0, Tag.Sequence, buf.length, 'OCSPRequest');
  if (top.end !== buf.length) bad('trailing bytes');
  const [tbsEl, sigEl, extra] = children(buf, top);
  if (!tbsEl || tbsEl.tag !== Tag.Sequence || (sigEl && sigEl.tag !== 0xa0) || extra) bad('not { tbsRequest, [0] optionalSignature }');

  const fields = children(buf, tbsEl!);
  let i = 0;
  if (fields[i]?.tag === 0xa0) {
    // [0] EXPLICIT Version DEFAULT v1: DER would omit it, but an explicit v1 is harmless.
    const v = children(buf, fields[i++]!);
    if (v.length !== 1 || v[0]!.tag !== Tag.Integer || !content(buf, v[0]!).equals(Buffer.from([0]))) bad('version must be v1');
  }
  if (fields[i]?.tag === 0xa1) i++; // requestorName: informational only
  const listEl = fields[i++];
  if (!listEl || listEl.tag !== Tag.Sequence) bad('requestList missing');
  const extsEl = fields[i]?.tag === 0xa2 ? fields[i++] : undefined;
  if (i !== fields.length) bad('unexpected field in TBSRequest');

  const requests = children(buf, listEl!).map((reqEl) => {
    if (reqEl.tag !== Tag.Sequence) bad('Request must be a SEQUENCE');
    const [certIdEl, singleExts, more] = children(buf, reqEl);
    if (!certIdEl || (singleExts && singleExts.tag !== 0xa0) || more) bad('Request is not { CertID, [0] extensions }');
    if (singleExts) readExtensions(buf, explicitInner(buf, singleExts));
    return decodeCertId(buf, certIdEl!);
  });
  if (requests.length === 0) bad('requestList is empty');
  const nonce = extsEl ? readExtensions(buf, explicitInner(buf, extsEl)) : undefined;
  return Object.freeze({ requests, ...(nonce ? { nonce } : {}), signed: sigEl !== undefined });
}

function explicitInner(buf: Buffer, el: Element): Element {
  const [inner, more] = children(buf, el);
  if (!inner || more) bad('an EXPLICIT tag must hold exactly one element');
  return inner!;
}

/** §4.1.1: the hashes of the issuer's DER subject Name and of its public key BIT STRING value. */
export function certIdHashes(issuer: Certificate, alg: OcspHashAlgorithm): { nameHash: Buffer; keyHash: Buffer } {
  const spki = issuer.spki;
  const top = expect(spki, 0, Tag.Sequence, spki.length, 'SubjectPublicKeyInfo');
  const algEl = expect(spki, top.contentStart, Tag.Sequence, top.end, 'AlgorithmIdentifier');
  const key = expect(spki, algEl.end, Tag.BitString, top.end, 'subjectPublicKey');
  return {
    nameHash: createHash(alg).update(issuer.subjectDer).digest(),
    // "excluding the tag and length fields": the key octets after the unused-bits octet.
    keyHash: createHash(alg).update(content(spki, key).subarray(1)).digest(),
  };
}

/**
 * A CertID built here rather than received: for pre-signing a response
 * before any request asks (the cache). hashAlgorithm carries NULL parameters
 * as OpenSSL writes them; clients match CertIDs on the algorithm OID.
 */
export function certIdFor(issuer: Certificate, serial: string, alg: OcspHashAlgorithm = 'sha1'): CertId {
  const { nameHash, keyHash } = certIdHashes(issuer, alg);
  const magnitude = Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex');
  if (magnitude.length === 0 || magnitude.length * 2 < serial.length) throw new PkiError('lint-failed', `serial "${serial}" is not hex`);
  const serialInt = uintBytes(magnitude);
  const der = seq(seq(oid(alg === 'sha1' ? OID.sha1 : OID.sha256), nullValue), octetString(nameHash), octetString(keyHash), serialInt);
  const canonical = decodeUint(serialInt, readElement(serialInt, 0), 'serial').toString('hex');
  return { hashAlgorithm: alg, issuerNameHash: nameHash, issuerKeyHash: keyHash, serial: canonical, der };
}

/**
 * A cache key for a CertID: equal for every encoding of the same question
 * (hash algorithm, issuer hashes, serial), so a request whose CertID was
 * encoded differently still finds the pre-signed response.
 */
export function certIdKey(id: CertId): string {
  return `${id.hashAlgorithm}:${id.issuerNameHash.toString('hex')}:${id.issuerKeyHash.toString('hex')}:${id.serial}`;
}
