/**
 * X.501 distinguished names (RFC 5280 §4.1.2.4): decode to attributes, encode
 * from attributes, and print as RFC 4514 strings.
 */
import { children, content, decodeOid, expect, oid, printable, seq, tlv, Tag, utf8 } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';

export interface NameAttribute {
  readonly type: string; // OID
  readonly value: string;
}

const SHORT: Record<string, string> = {
  [OID.commonName]: 'CN',
  [OID.serialNumber]: 'serialNumber',
  [OID.country]: 'C',
  [OID.locality]: 'L',
  [OID.state]: 'ST',
  [OID.organization]: 'O',
  [OID.organizationalUnit]: 'OU',
  [OID.emailAddress]: 'emailAddress',
};
const BY_SHORT = Object.fromEntries(Object.entries(SHORT).map(([k, v]) => [v.toLowerCase(), k]));

/** RFC 5280 Appendix A upper bounds. */
const MAX_LENGTH: Record<string, number> = {
  [OID.commonName]: 64,
  [OID.serialNumber]: 64,
  [OID.country]: 2,
  [OID.locality]: 128,
  [OID.state]: 128,
  [OID.organization]: 64,
  [OID.organizationalUnit]: 64,
  [OID.emailAddress]: 255,
};

function decodeString(buf: Buffer, tag: number): string {
  switch (tag) {
    case Tag.Utf8String:
      return buf.toString('utf8');
    case Tag.PrintableString:
    case Tag.Ia5String:
      return buf.toString('latin1');
    case 0x14: // TeletexString, read as Latin-1 as most implementations do
      return buf.toString('latin1');
    case 0x1e: // BMPString, UTF-16BE
      // swap16 throws a RangeError on an odd length; that is malformed input, not a crash.
      if (buf.length % 2 !== 0) throw new PkiError('malformed-der', 'BMPString of odd length');
      return Buffer.from(buf).swap16().toString('utf16le');
    default:
      throw new PkiError('malformed-der', `name attribute string type 0x${tag.toString(16)} is not supported`);
  }
}

/** Decodes a DER Name into its attributes in order (one attribute per RDN is usual; multi-valued RDNs are flattened). */
export function decodeName(der: Uint8Array, offset = 0, limit = der.length): NameAttribute[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const top = expect(buf, offset, Tag.Sequence, limit, 'Name');
  const out: NameAttribute[] = [];
  for (const rdn of children(buf, top)) {
    if (rdn.tag !== Tag.Set) throw new PkiError('malformed-der', 'Name: RDN is not a SET');
    for (const atv of children(buf, rdn)) {
      if (atv.tag !== Tag.Sequence) throw new PkiError('malformed-der', 'Name: attribute is not a SEQUENCE');
      const [t, v, extra] = children(buf, atv);
      if (!t || !v || extra || t.tag !== Tag.Oid) throw new PkiError('malformed-der', 'Name: bad AttributeTypeAndValue');
      out.push({ type: decodeOid(buf, t), value: decodeString(content(buf, v), v.tag) });
    }
  }
  return out;
}

/**
 * Encodes attributes as a Name, one RDN each. countryName and serialNumber
 * are PrintableString (RFC 5280 Appendix A); the rest UTF8String (§4.1.2.6).
 */
export function encodeName(attrs: readonly NameAttribute[]): Buffer {
  return seq(
    ...attrs.map((a) => {
      const max = MAX_LENGTH[a.type];
      if (max !== undefined && [...a.value].length > max) {
        throw new PkiError('lint-failed', `${SHORT[a.type] ?? a.type} is longer than ${max} characters`);
      }
      if (a.value.length === 0) throw new PkiError('lint-failed', `${SHORT[a.type] ?? a.type} is empty`);
      // X.520 / RFC 5280 Appendix A: CountryName ::= PrintableString (SIZE (2)), exactly two.
      if (a.type === OID.country && a.value.length !== 2) throw new PkiError('lint-failed', 'C must be a two-letter country code');
      const printableOnly = a.type === OID.country || a.type === OID.serialNumber;
      if (printableOnly && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(a.value)) {
        throw new PkiError('lint-failed', `${SHORT[a.type]} must be a PrintableString`);
      }
      const value = printableOnly ? printable(a.value) : utf8(a.value);
      return tlv(Tag.Set, seq(oid(a.type), value));
    }),
  );
}

function escape4514(v: string): string {
  return v
    .replace(/([\\",+;<>=])/g, '\\$1')
    // Trailing space before leading: a value of one space needs one escape, not two.
    .replace(/ $/, '\\ ')
    .replace(/^([ #])/, '\\$1');
}

/** RFC 4514 string: most specific RDN first, e.g. `CN=dev-1,O=Acme`. */
export function formatName(attrs: readonly NameAttribute[]): string {
  return [...attrs]
    .reverse()
    .map((a) => `${SHORT[a.type] ?? a.type}=${escape4514(a.value)}`)
    .join(',');
}

/** Parses the simple form `CN=x,O=y` (or `/CN=x/O=y`) given on command lines; most specific first as RFC 4514. */
export function parseName(s: string): NameAttribute[] {
  const parts = s.startsWith('/') ? s.slice(1).split('/') : s.split(/(?<!\\),/);
  const attrs = parts
    .filter((p) => p.trim().length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq < 1) throw new PkiError('lint-failed', `bad name component "${p}"`);
      const key = p.slice(0, eq).trim();
      const type = BY_SHORT[key.toLowerCase()] ?? (/^\d+(\.\d+)+$/.test(key) ? key : undefined);
      if (!type) throw new PkiError('lint-failed', `unknown name attribute ${key}`);
      return { type, value: p.slice(eq + 1).trim().replace(/\\(.)/g, '$1') };
    });
  return s.startsWith('/') ? attrs : attrs.reverse();
}

export const commonName = (attrs: readonly NameAttribute[]): string | undefined =>
  attrs.find((a) => a.type === OID.commonName)?.value;
