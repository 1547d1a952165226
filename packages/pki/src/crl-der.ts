/**
 * DER pieces for CRLs that der.ts does not cover, because CRLs are the one
 * structure certfleet writes that outgrows it:
 *  - lengths of 4 octets: a 1,000,000-entry CRL is ~44 MB, past der.ts's
 *    3-octet (16 MiB) bound;
 *  - writing a time straight into a preallocated buffer, the calendar part
 *    cached per day, so a million revocation dates cost no Date formatting;
 *  - INTEGER from a bigint (cRLNumber); reading INTEGERs, extensions and
 *    times, shared by the CRL and OCSP parsers.
 */
import { children, content, decodeOid, type Element, readElement, Tag, uintBytes } from './der.js';
import { PkiError } from './errors.js';

// ---------------------------------------------------------------- lengths

/** Size of a tag + length header for `len` content octets (X.690 §8.1.3, minimal). */
export function headerSize(len: number): number {
  if (len < 0x80) return 2;
  if (len < 0x100) return 3;
  if (len < 0x10000) return 4;
  if (len < 0x1000000) return 5;
  if (len <= 0xffffffff) return 6;
  throw new PkiError('lint-failed', 'DER element over 4 GiB');
}

/** Writes a tag + minimal definite length at `p`; returns the offset after it. */
export function writeHeader(out: Buffer, p: number, tag: number, len: number): number {
  out[p++] = tag;
  const size = headerSize(len);
  if (size === 2) {
    out[p++] = len;
    return p;
  }
  const n = size - 2;
  out[p++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[p++] = Math.floor(len / 2 ** (8 * i)) & 0xff;
  return p;
}

/** One TLV of any size around parts, written with a single allocation. */
export function bigTlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of parts) len += c.length;
  const out = Buffer.allocUnsafe(headerSize(len) + len);
  let p = writeHeader(out, 0, tag, len);
  for (const c of parts) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/**
 * readElement with lengths of up to 4 octets (still DER: definite and
 * minimal). Only the outer CRL containers need it; entries use readElement.
 */
export function readBigElement(buf: Uint8Array, offset: number, limit = buf.length): Element {
  if (offset + 2 > limit) throw new PkiError('malformed-der', 'truncated DER element');
  if (buf[offset + 1] !== 0x84) return readElement(buf, offset, limit);
  if ((buf[offset]! & 0x1f) === 0x1f) throw new PkiError('malformed-der', 'high tag numbers are not used here');
  const p = offset + 6;
  if (p > limit) throw new PkiError('malformed-der', 'truncated DER length');
  if (buf[offset + 2] === 0) throw new PkiError('malformed-der', 'non-minimal DER length');
  const len = ((buf[offset + 2]! << 24) >>> 0) + (buf[offset + 3]! << 16) + (buf[offset + 4]! << 8) + buf[offset + 5]!;
  if (len + p > limit) throw new PkiError('malformed-der', 'DER element overruns its container');
  return { tag: buf[offset]!, start: offset, contentStart: p, end: p + len };
}

// ---------------------------------------------------------------- INTEGER

/** A non-negative bigint as a DER INTEGER. */
export function bigintInteger(n: bigint): Buffer {
  if (n < 0n) throw new PkiError('lint-failed', 'integer must not be negative');
  const hex = n.toString(16);
  return uintBytes(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
}

// ---------------------------------------------------------------- reading

const bad = (why: string): never => {
  throw new PkiError('malformed-der', why);
};

/** Magnitude octets of a DER-minimal, non-negative INTEGER. */
export function decodeUint(buf: Buffer, el: Element, what: string): Buffer {
  if (el.tag !== Tag.Integer) bad(`${what}: expected INTEGER`);
  const c = content(buf, el);
  if (c.length === 0 || (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80)))) bad(`${what}: non-minimal INTEGER`);
  if (c[0]! & 0x80) bad(`${what}: negative INTEGER`);
  return c[0] === 0 && c.length > 1 ? c.subarray(1) : c;
}

export interface Extension {
  readonly id: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

/** Extensions (RFC 5280 §4.1): SEQUENCE OF { extnID, critical DEFAULT FALSE, extnValue }. */
export function decodeExtensions(buf: Buffer, el: Element): Extension[] {
  if (el.tag !== Tag.Sequence) bad('Extensions: expected SEQUENCE');
  return children(buf, el).map((ext) => {
    const parts = ext.tag === Tag.Sequence ? children(buf, ext) : [];
    const [idEl, second, third] = parts;
    const valueEl = third ?? second;
    if (!idEl || idEl.tag !== Tag.Oid || !valueEl || valueEl.tag !== Tag.OctetString || parts.length > 3) bad('bad Extension');
    if (third && !(second!.tag === Tag.Boolean && second!.end - second!.contentStart === 1 && buf[second!.contentStart] === 0xff)) {
      bad('Extension critical flag must be TRUE when present (DER)');
    }
    return { id: decodeOid(buf, idEl!), critical: third !== undefined, value: content(buf, valueEl!) };
  });
}

// ---------------------------------------------------------------- time

const DAY_S = 86_400;
const UTC = 0x17;
const GENERALIZED = 0x18;

/**
 * Writes der.time() of whole seconds straight into a buffer, byte for byte.
 * The calendar part (tag, length, date digits) is cached per day and the
 * clock part is arithmetic, so a million revocation dates cost no Date
 * formatting. One encoder per CRL: its cache lives as long as the build.
 */
export class TimeEncoder {
  private readonly days = new Map<number, Uint8Array>();

  /** Tag, length and the date digits of `day`, e.g. 17 0d "260314" (UTCTime). */
  private prefix(day: number): Uint8Array {
    const hit = this.days.get(day);
    if (hit) return hit;
    const d = new Date(day * DAY_S * 1000);
    const year = d.getUTCFullYear();
    if (!(year >= 0 && year <= 9999)) throw new PkiError('lint-failed', `year ${year} cannot be encoded`);
    const ymd = d.toISOString().slice(0, 10).replace(/-/g, ''); // YYYYMMDD
    // RFC 5280 §5.1.2.4, §5.1.2.6: UTCTime for 1950–2049, GeneralizedTime otherwise.
    const utc = year >= 1950 && year < 2050;
    const digits = Buffer.from(utc ? ymd.slice(2) : ymd, 'ascii');
    const out = Buffer.concat([Buffer.from([utc ? UTC : GENERALIZED, digits.length + 7]), digits]);
    this.days.set(day, out);
    return out;
  }

  /** Encoded size of the time: 15 (UTCTime) or 17 (GeneralizedTime). */
  size(seconds: number): number {
    return this.prefix(Math.floor(seconds / DAY_S)).length + 7;
  }

  /** Writes the time at `p`; returns the offset after it. */
  write(out: Buffer, p: number, seconds: number): number {
    const day = Math.floor(seconds / DAY_S);
    const prefix = this.prefix(day);
    // A byte loop: Buffer#copy costs more than ten bytes are worth.
    for (let k = 0; k < prefix.length; k++) out[p++] = prefix[k]!;
    const sod = seconds - day * DAY_S;
    const h = Math.floor(sod / 3600);
    const m = Math.floor((sod % 3600) / 60);
    const s = sod % 60;
    out[p++] = 0x30 + Math.floor(h / 10);
    out[p++] = 0x30 + (h % 10);
    out[p++] = 0x30 + Math.floor(m / 10);
    out[p++] = 0x30 + (m % 10);
    out[p++] = 0x30 + Math.floor(s / 10);
    out[p++] = 0x30 + (s % 10);
    out[p++] = 0x5a; // 'Z'
    return p;
  }
}

/** Whole seconds of a Date (der.time() truncates milliseconds); throws on an invalid Date. */
export function toSeconds(d: Date, what: string): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(ms)) throw new PkiError('lint-failed', `${what} is not a valid date`);
  return Math.floor(ms / 1000);
}

/** Decodes a DER UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 restricts them. */
export function decodeTime(buf: Uint8Array, el: Element): Date {
  const s = content(buf, el).toString('latin1');
  const m =
    el.tag === UTC ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : el.tag === GENERALIZED ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new PkiError('malformed-der', `bad time "${s}"`);
  const [yy, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const year = el.tag === UTC ? (yy < 50 ? 2000 + yy : 1900 + yy) : yy;
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
  date.setUTCFullYear(year); // Date.UTC maps years 0–99 to 1900–1999
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw new PkiError('malformed-der', `bad time "${s}"`);
  }
  return date;
}
