/**
 * Building a CRL (RFC 5280 §5): v2, with authorityKeyIdentifier, cRLNumber
 * and optionally a critical issuingDistributionPoint; entries carry a
 * reasonCode unless the reason is unspecified (§5.3.1 recommends omitting
 * it). Like certificates, the signer accepts only what prepareCrl returns
 * (isPreparedCrl) and signs its `tbs`; assembleCrl wraps the signature.
 *
 * Speed: a partitioned fleet CRL may hold a million entries of ~44 bytes.
 * Built the certificate way (tlv()/seq() per field, then concatenated), that
 * is four small allocations and copies per entry plus a 44 MB concat per outer
 * level: 3.7–4.0 s for 1,000,000 entries here, before any validation. Instead
 * a first pass validates every entry and sums its exact size, and a second
 * writes every byte once into ONE preallocated buffer: bench/crl.ts measures
 * 0.7 s for prepareCrl on 1,000,000 entries (43.9 MB; duplicate check
 * included) and 25 ms to sign, where `openssl ca -gencrl` takes 8.9 s.
 */
import { authorityKeyIdentifier, extension } from './extensions.js';
import { bitString, explicit, seq, smallInt, time, tlv } from './der.js';
import { bigintInteger, bigTlv, headerSize, TimeEncoder, toSeconds, writeHeader } from './crl-der.js';
import { findDuplicateSerial } from './crl-duplicates.js';
import { PkiError } from './errors.js';
import { checkGeneralName } from './general-name.js';
import type { SignatureScheme } from './keys.js';
import { OID } from './oids.js';
import { isReasonCode, REVOCATION_REASONS } from './revocation-reason.js';
import type { IssuerInfo } from './template.js';

export interface CrlEntry {
  /** Lowercase or uppercase hex of the serial's magnitude, as Certificate.serial() gives it. */
  readonly serial: string;
  readonly revokedAt: Date;
  /** RFC 5280 §5.3.1 code; absent or 0 (unspecified) writes no reasonCode. */
  readonly reason?: number;
}

export interface CrlRequest {
  readonly issuer: IssuerInfo;
  /** §5.2.3: monotonically increasing per issuer (and per partition), at most 20 octets. */
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Read once, in order; order is kept (RFC 5280 does not sort entries). */
  readonly entries: Iterable<CrlEntry>;
  /** §5.2.5: this CRL covers only end-entity certificates whose CRL distribution point is `url`. */
  readonly idp?: { readonly url: string };
}

export interface PreparedCrl {
  readonly issuerId: string;
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly count: number;
  readonly schemeOid: string;
  /** DER TBSCertList, the bytes the signer signs. */
  readonly tbs: Buffer;
}

const prepared = new WeakSet<PreparedCrl>();

/** True only for objects made by prepareCrl in this process. */
export function isPreparedCrl(p: PreparedCrl): boolean {
  return prepared.has(p);
}

function lint(ok: boolean, why: string): void {
  if (!ok) throw new PkiError('lint-failed', why);
}

/**
 * crlEntryExtensions holding only a reasonCode, one constant per code (14
 * bytes): Extensions { Extension { cRLReason, OCTET STRING { ENUMERATED } } }.
 */
const REASON_EXTENSIONS: Buffer[] = [];
for (const code of Object.values(REVOCATION_REASONS)) {
  REASON_EXTENSIONS[code] = seq(extension(OID.cRLReason, false, tlv(0x0a, Buffer.from([code]))));
}

/** §5.2.5: distributionPoint fullName URI and onlyContainsUserCerts TRUE; critical. */
function issuingDistributionPoint(url: string): Buffer {
  checkGeneralName({ type: 'uri', value: url });
  const fullName = tlv(0xa0, tlv(0x86, Buffer.from(url, 'ascii')));
  return extension(OID.issuingDistributionPoint, true, seq(tlv(0xa0, fullName), tlv(0x81, Buffer.from([0xff]))));
}

/**
 * The canonical form of a serial: no leading zero digits, even length (hex
 * digits themselves are checked when written). §4.1.2.2: positive, at most 20
 * octets including the sign octet.
 */
function canonicalSerial(serial: string): string {
  if (typeof serial !== 'string') throw new PkiError('lint-failed', 'CRL entry serial must be a hex string');
  const len = serial.length;
  let i = 0;
  while (i < len - 1 && serial.charCodeAt(i) === 0x30) i++;
  let hex = i === 0 ? serial : serial.slice(i);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (hex.length === 0 || hex === '00' || hex.length / 2 + signOctet(hex) > 20) {
    throw new PkiError('lint-failed', `CRL entry serial "${serial.slice(0, 48)}" is not a positive hex serial of at most 20 octets`);
  }
  return hex;
}

/** 1 when the first hex digit is 8–f: the INTEGER needs a leading 0x00 (X.690 §8.3.2). */
function signOctet(hex: string): number {
  const c = hex.charCodeAt(0) | 0x20;
  return (c >= 0x38 && c <= 0x39) || (c >= 0x61 && c <= 0x66) ? 1 : 0;
}

export function prepareCrl(req: CrlRequest): PreparedCrl {
  const { issuer } = req;
  const thisSec = toSeconds(req.thisUpdate, 'thisUpdate');
  const nextSec = toSeconds(req.nextUpdate, 'nextUpdate');
  lint(nextSec > thisSec, 'nextUpdate must be after thisUpdate (RFC 5280 §5.1.2.5)');
  const times = new TimeEncoder();
  times.size(nextSec); // refuses a year past 9999, which no Time can hold
  lint(typeof req.crlNumber === 'bigint' && req.crlNumber >= 0n && req.crlNumber < 1n << 159n, 'cRLNumber must be a non-negative integer of at most 20 octets (RFC 5280 §5.2.3)');

  // Pass 1: validate and measure, keeping what pass 2 needs in typed arrays
  // (one allocation each, nothing per entry for the GC).
  const list: readonly CrlEntry[] = Array.isArray(req.entries) ? req.entries : Array.from(req.entries);
  const count = list.length;
  const hexes: string[] = new Array<string>(count);
  const seconds = new Float64Array(count);
  const reasons = new Uint8Array(count);
  let entriesLen = 0;
  for (let i = 0; i < count; i++) {
    const e = list[i]!;
    const hex = canonicalSerial(e.serial);
    const sec = toSeconds(e.revokedAt, `revocation date of ${hex}`);
    const reason = e.reason ?? 0;
    lint(isReasonCode(reason), `${reason} is not a CRLReason code (RFC 5280 §5.3.1)`);
    lint(reason !== REVOCATION_REASONS.removeFromCRL, 'removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1)');
    // every entry is < 128 bytes: a 2-byte header
    entriesLen += 4 + hex.length / 2 + signOctet(hex) + times.size(sec) + (reason === 0 ? 0 : REASON_EXTENSIONS[reason]!.length);
    hexes[i] = hex;
    seconds[i] = sec;
    reasons[i] = reason;
  }

  const exts = [authorityKeyIdentifier(issuer.keyIdentifier), extension(OID.cRLNumber, false, bigintInteger(req.crlNumber))];
  if (req.idp) exts.push(issuingDistributionPoint(req.idp.url));
  // version v2 (§5.1.2.1), signature, issuer, thisUpdate, nextUpdate
  const head = Buffer.concat([smallInt(1), issuer.scheme.algorithmId, issuer.subjectDer, time(req.thisUpdate), time(req.nextUpdate)]);
  const tail = explicit(0, seq(...exts));
  // §5.1.2.6: with no revoked certificates the list is absent, not empty.
  const listLen = count === 0 ? 0 : headerSize(entriesLen) + entriesLen;
  const bodyLen = head.length + listLen + tail.length;

  // Pass 2: one allocation, every byte written exactly once.
  const tbs = Buffer.allocUnsafe(headerSize(bodyLen) + bodyLen);
  const serialAt = new Uint32Array(count);
  let p = writeHeader(tbs, 0, 0x30, bodyLen);
  p += head.copy(tbs, p);
  if (count > 0) p = writeHeader(tbs, p, 0x30, entriesLen);
  for (let i = 0; i < count; i++) {
    const hex = hexes[i]!;
    const sign = signOctet(hex);
    const n = hex.length / 2 + sign;
    const reason = reasons[i]!;
    const sec = seconds[i]!;
    const ext = reason === 0 ? undefined : REASON_EXTENSIONS[reason]!;
    tbs[p++] = 0x30;
    tbs[p++] = 2 + n + times.size(sec) + (ext ? ext.length : 0);
    tbs[p++] = 0x02;
    tbs[p++] = n;
    if (sign) tbs[p++] = 0;
    // Buffer#write stops at the first non-hex character: a short count is a bad serial.
    if (tbs.write(hex, p, 'hex') !== hex.length / 2) throw new PkiError('lint-failed', `CRL entry serial "${hex}" is not hex`);
    serialAt[i] = p - sign;
    p = times.write(tbs, p + hex.length / 2, sec);
    if (ext) for (let k = 0; k < ext.length; k++) tbs[p++] = ext[k]!;
  }
  p += tail.copy(tbs, p);
  if (p !== tbs.length) throw new Error(`CRL size mismatch: wrote ${p} of ${tbs.length} bytes`);
  const dup = findDuplicateSerial(tbs, serialAt);
  lint(dup < 0, `serial ${hexes[dup]} is listed twice`);

  const crl: PreparedCrl = Object.freeze({
    issuerId: issuer.id,
    crlNumber: req.crlNumber,
    thisUpdate: new Date(thisSec * 1000),
    nextUpdate: new Date(nextSec * 1000),
    count,
    schemeOid: issuer.scheme.oid,
    tbs,
  });
  prepared.add(crl);
  return crl;
}

/** CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING } (§5.1.1). */
export function assembleCrl(tbs: Uint8Array, scheme: SignatureScheme, signature: Uint8Array): Buffer {
  return bigTlv(0x30, tbs, scheme.algorithmId, bitString(signature));
}

