/**
 * Reading a CRL (RFC 5280 §5.1) and checking its signature. A cold path
 * (tests, audits, agents checking a downloaded CRL), but CRLs are the one
 * structure that grows to tens of megabytes, and @peculiar/asn1-x509's
 * CertificateList cannot hold one: asn1js stops at 10,000 nodes by default,
 * so a 2,000-entry CRL already fails with "Maximum ASN.1 node count
 * exceeded" (1,500 entries parse, in ~110 ms here). This walks the DER with
 * the strict reader instead, counts entries by their headers (1,000,000 in
 * ~20 ms) and decodes each only when iterated (~2 µs each).
 */
import type { KeyObject } from 'node:crypto';
import { decodeExtensions, decodeTime, decodeUint, readBigElement } from './crl-der.js';
import { children, content, type Element, expect, readElement, slice, Tag } from './der.js';
import { PkiError } from './errors.js';
import { schemeFromAlgorithmId, type SignatureScheme, verifyWith } from './keys.js';
import { OID } from './oids.js';
import { isReasonCode, type RevocationReasonCode } from './revocation-reason.js';

export interface ParsedCrlEntry {
  /** Lowercase hex of the serial's magnitude, as Certificate.serial() gives it. */
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason?: RevocationReasonCode;
}

export interface ParsedCrl {
  readonly der: Buffer;
  /** DER TBSCertList: the signed bytes. */
  readonly tbs: Buffer;
  readonly scheme: SignatureScheme;
  readonly signature: Buffer;
  readonly version: 1 | 2;
  /** DER Name of the issuer, comparable byte for byte with Certificate.subjectDer. */
  readonly issuerDer: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly crlNumber?: bigint;
  readonly authorityKeyIdentifier?: Buffer;
  /** The issuingDistributionPoint fullName URI, when there is one. */
  readonly distributionPoint?: string;
  readonly count: number;
  /** Decodes the entries in order; a malformed entry throws when it is reached. */
  entries(): IterableIterator<ParsedCrlEntry>;
}

const bad = (why: string): never => {
  throw new PkiError('malformed-der', why);
};

/** Children of a constructed element whose own children may be large. */
function bigChildren(buf: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const el = readBigElement(buf, p, parent.end);
    out.push(el);
    p = el.end;
  }
  return out;
}

function decodeEntry(buf: Buffer, el: Element): ParsedCrlEntry {
  if (el.tag !== Tag.Sequence) bad('revokedCertificates entry: expected SEQUENCE');
  const [serialEl, dateEl, extsEl, extra] = children(buf, el);
  if (!serialEl || !dateEl || extra) bad('revokedCertificates entry: wrong number of fields');
  const serial = decodeUint(buf, serialEl!, 'userCertificate').toString('hex');
  const revokedAt = decodeTime(buf, dateEl!);
  let reason: RevocationReasonCode | undefined;
  for (const ext of extsEl ? decodeExtensions(buf, extsEl) : []) {
    if (ext.id === OID.cRLReason) {
      if (ext.value.length !== 3 || ext.value[0] !== 0x0a || ext.value[1] !== 1) bad('reasonCode: expected ENUMERATED');
      const code = ext.value[2]!;
      if (!isReasonCode(code)) bad(`reasonCode ${code} is not a CRLReason`);
      reason = code as RevocationReasonCode;
    } else if (ext.critical) {
      // §5.3: a critical entry extension we cannot process makes the CRL unusable.
      throw new PkiError('unsupported-algorithm', `critical CRL entry extension ${ext.id} is not supported`);
    }
  }
  return reason === undefined ? { serial, revokedAt } : { serial, revokedAt, reason };
}

/** Parses a DER CertificateList; the signature is checked separately (verifyCrl). */
export function parseCrl(input: Uint8Array): ParsedCrl {
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const top = readBigElement(der, 0);
  if (top.tag !== Tag.Sequence || top.end !== der.length) bad('CertificateList must be one SEQUENCE with no trailing bytes');
  const [tbsEl, outerAlgEl, sigEl, extra] = bigChildren(der, top);
  if (!tbsEl || tbsEl.tag !== Tag.Sequence || !outerAlgEl || !sigEl || sigEl.tag !== Tag.BitString || extra) bad('CertificateList is not { tbsCertList, signatureAlgorithm, signatureValue }');
  const bits = content(der, sigEl!);
  if (bits[0] !== 0) bad('signatureValue has unused bits');

  const fields = bigChildren(der, tbsEl!);
  let i = 0;
  let version: 1 | 2 = 1;
  if (fields[0]?.tag === Tag.Integer) {
    const v = content(der, fields[i++]!);
    if (v.length !== 1 || v[0] !== 1) bad('CRL version must be v2 when present (§5.1.2.1)');
    version = 2;
  }
  const algEl = fields[i++];
  if (!algEl || !slice(der, algEl).equals(slice(der, outerAlgEl!))) bad('signatureAlgorithm differs from tbsCertList.signature (§5.1.1.2)');
  const scheme = schemeFromAlgorithmId(der, outerAlgEl!.start, outerAlgEl!.end);
  const issuerEl = fields[i++];
  if (!issuerEl || issuerEl.tag !== Tag.Sequence) bad('CRL issuer must be a Name');
  const thisEl = fields[i++];
  if (!thisEl) bad('CRL without thisUpdate');
  const thisUpdate = decodeTime(der, thisEl!);
  const nextUpdate = fields[i]?.tag === Tag.UtcTime || fields[i]?.tag === Tag.GeneralizedTime ? decodeTime(der, fields[i++]!) : undefined;
  const listEl = fields[i]?.tag === Tag.Sequence ? fields[i++] : undefined;
  const extsEl = fields[i]?.tag === 0xa0 ? fields[i++] : undefined;
  if (i !== fields.length) bad('unexpected field in tbsCertList');
  if (extsEl && version !== 2) bad('crlExtensions require v2');
  if (listEl && listEl.contentStart === listEl.end) bad('an empty revokedCertificates list must be absent (§5.1.2.6)');

  // Count entries by their headers only: one readElement each.
  let count = 0;
  if (listEl) for (let p = listEl.contentStart; p < listEl.end; p = readElement(der, p, listEl.end).end) count++;

  let crlNumber: bigint | undefined;
  let authorityKeyIdentifier: Buffer | undefined;
  let distributionPoint: string | undefined;
  if (extsEl) {
    const [inner, more] = children(der, extsEl);
    if (!inner || more) bad('crlExtensions must hold one Extensions SEQUENCE');
    for (const ext of decodeExtensions(der, inner!)) {
      const v = ext.value;
      if (ext.id === OID.cRLNumber) {
        const el = expect(v, 0, Tag.Integer, v.length, 'cRLNumber');
        if (el.end !== v.length) bad('trailing bytes in cRLNumber');
        crlNumber = BigInt(`0x${decodeUint(v, el, 'cRLNumber').toString('hex')}`);
      } else if (ext.id === OID.authorityKeyIdentifier) {
        const seqEl = expect(v, 0, Tag.Sequence, v.length, 'authorityKeyIdentifier');
        const keyId = children(v, seqEl).find((c) => c.tag === 0x80);
        if (keyId) authorityKeyIdentifier = Buffer.from(content(v, keyId));
      } else if (ext.id === OID.issuingDistributionPoint) {
        const seqEl = expect(v, 0, Tag.Sequence, v.length, 'issuingDistributionPoint');
        const dp = children(v, seqEl).find((c) => c.tag === 0xa0);
        const fullName = dp ? children(v, dp).find((c) => c.tag === 0xa0) : undefined;
        const uri = fullName ? children(v, fullName).find((c) => c.tag === 0x86) : undefined;
        if (uri) distributionPoint = content(v, uri).toString('latin1');
      } else if (ext.critical) {
        // §5.2: e.g. deltaCRLIndicator; a CRL with a critical extension we cannot process must not be used.
        throw new PkiError('unsupported-algorithm', `critical CRL extension ${ext.id} is not supported`);
      }
    }
  }

  const list = listEl;
  return Object.freeze({
    der,
    tbs: slice(der, tbsEl!),
    scheme,
    signature: bits.subarray(1),
    version,
    issuerDer: slice(der, issuerEl!),
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    ...(authorityKeyIdentifier ? { authorityKeyIdentifier } : {}),
    ...(distributionPoint ? { distributionPoint } : {}),
    count,
    *entries(): IterableIterator<ParsedCrlEntry> {
      if (!list) return;
      for (let p = list.contentStart; p < list.end; ) {
        const el = readElement(der, p, list.end);
        yield decodeEntry(der, el);
        p = el.end;
      }
    },
  });
}

/** True when `crl` (DER or parsed) is signed by `issuerPublicKey`. */
export function verifyCrl(crl: Uint8Array | ParsedCrl, issuerPublicKey: KeyObject): boolean {
  const parsed = crl instanceof Uint8Array ? parseCrl(crl) : crl;
  return verifyWith(parsed.scheme, parsed.tbs, issuerPublicKey, parsed.signature);
}
