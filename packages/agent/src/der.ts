/**
 * The little DER (X.690) the agent reads and writes itself: an ECDSA
 * signature from raw r||s, and walking the certs-only PKCS#7 of EST
 * /cacerts. @certfleet/pki keeps its DER codec internal (its public surface
 * is certificates, CSRs and keys), so the agent carries these few lines
 * rather than widen that surface for two callers.
 */
import { AgentError } from './errors.js';

export const TAG = { integer: 0x02, octetString: 0x04, oid: 0x06, sequence: 0x30, set: 0x31 } as const;

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  readonly contentStart: number;
  /** Offset just past the element. */
  readonly end: number;
}

function malformed(what: string): AgentError {
  return new AgentError('bad-response', `malformed DER: ${what}`);
}

/** Reads one element at `offset`; definite lengths only (DER, X.690 §10.1). */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag number');
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw malformed('indefinite or oversized length');
    if (p + n > limit) throw malformed('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw malformed('element overruns its container');
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The elements inside a constructed one. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const el = readTlv(buf, p, parent.end);
    out.push(el);
    p = el.end;
  }
  return out;
}

export function expectTag(el: Tlv | undefined, tag: number, what: string): Tlv {
  if (!el || el.tag !== tag) throw malformed(`${what}: expected tag 0x${tag.toString(16)}${el ? `, found 0x${el.tag.toString(16)}` : ''}`);
  return el;
}

export const bytesOf = (buf: Uint8Array, el: Tlv): Buffer => Buffer.from(buf.subarray(el.start, el.end));
export const contentOf = (buf: Uint8Array, el: Tlv): Buffer => Buffer.from(buf.subarray(el.contentStart, el.end));

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

export function encodeTlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

/** A non-negative INTEGER from big-endian magnitude bytes: minimal, with a 0x00 pad when the top bit is set (X.690 §8.3.2). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return encodeTlv(TAG.integer, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m.length ? m : Buffer.from([0]));
}

/** Decodes an OBJECT IDENTIFIER's content to dotted form. */
export function decodeOid(buf: Uint8Array, el: Tlv): string {
  const arcs: number[] = [];
  let v = 0;
  for (const b of buf.subarray(el.contentStart, el.end)) {
    v = v * 128 + (b & 0x7f);
    if (b & 0x80) continue;
    if (arcs.length === 0) {
      const first = v < 80 ? Math.floor(v / 40) : 2;
      arcs.push(first, v - first * 40);
    } else arcs.push(v);
    v = 0;
  }
  return arcs.join('.');
}
