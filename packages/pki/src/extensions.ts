/** Encoders for the certificate extensions certfleet issues (RFC 5280 §4.2). One function per extension. */
import { createHash } from 'node:crypto';
import { bitString, boolTrue, content, expect, octetString, oid, seq, smallInt, tlv, Tag } from './der.js';
import { encodeGeneralNames, type GeneralName } from './general-name.js';
import { OID } from './oids.js';

export type KeyUsageBit =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

const KU_BITS: Record<KeyUsageBit, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING } */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(oid(id), boolTrue, octetString(value)) : seq(oid(id), octetString(value));
}

/** §4.2.1.9; critical. pathLen only for CAs. */
export function basicConstraints(ca: boolean, pathLen?: number | null): Buffer {
  const parts = ca ? [boolTrue, ...(pathLen !== undefined && pathLen !== null ? [smallInt(pathLen)] : [])] : [];
  return extension(OID.basicConstraints, true, seq(...parts));
}

/** §4.2.1.3; critical. DER named bit string: trailing zero bits dropped (X.690 §11.2.2). */
export function keyUsage(bits: readonly KeyUsageBit[]): Buffer {
  let mask = 0;
  for (const b of bits) mask |= 0x80 >> KU_BITS[b];
  if (mask === 0) throw new Error('keyUsage needs at least one bit');
  let unused = 0;
  while (((mask >> unused) & 1) === 0) unused++;
  return extension(OID.keyUsage, true, bitString(Buffer.from([mask]), unused));
}

/** §4.2.1.12; not critical, as CA/B and most device profiles have it. */
export function extKeyUsage(purposes: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, seq(...purposes.map((p) => oid(p))));
}

/** §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents (without the unused-bits octet). */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const buf = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  const top = expect(buf, 0, Tag.Sequence, buf.length, 'SubjectPublicKeyInfo');
  const alg = expect(buf, top.contentStart, Tag.Sequence, top.end, 'AlgorithmIdentifier');
  const key = expect(buf, alg.end, Tag.BitString, top.end, 'subjectPublicKey');
  return createHash('sha1').update(content(buf, key).subarray(1)).digest();
}

export const subjectKeyIdentifier = (keyId: Uint8Array): Buffer =>
  extension(OID.subjectKeyIdentifier, false, octetString(keyId));

/** §4.2.1.1: keyIdentifier [0] only. */
export const authorityKeyIdentifier = (keyId: Uint8Array): Buffer =>
  extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyId)));

/** §4.2.1.6: critical when the subject is empty. */
export const subjectAltName = (names: readonly GeneralName[], critical: boolean): Buffer =>
  extension(OID.subjectAltName, critical, encodeGeneralNames(names));

/** §4.2.1.13: one distribution point with a fullName URI. */
export function crlDistributionPoints(url: string): Buffer {
  // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
  const fullName = tlv(0xa0, tlv(0x86, Buffer.from(url, 'ascii')));
  return extension(OID.crlDistributionPoints, false, seq(seq(tlv(0xa0, fullName))));
}

/** §4.2.2.1: OCSP responder and caIssuers locations. */
export function authorityInfoAccess(urls: { ocsp?: string; caIssuers?: string }): Buffer {
  const descs: Buffer[] = [];
  if (urls.ocsp) descs.push(seq(oid(OID.ocsp), tlv(0x86, Buffer.from(urls.ocsp, 'ascii'))));
  if (urls.caIssuers) descs.push(seq(oid(OID.caIssuers), tlv(0x86, Buffer.from(urls.caIssuers, 'ascii'))));
  return extension(OID.authorityInfoAccess, false, seq(...descs));
}

