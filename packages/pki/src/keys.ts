/**
 * Key generation, public-key import and signatures, all with node:crypto.
 * Which keys certfleet accepts is decided here, once: EC P-256 and P-384,
 * Ed25519, RSA of at least 2048 bits (DESIGN.md security baseline).
 */
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { children, content, decodeOid, expect, nullValue, oid, seq, Tag } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';

export type KeyAlgorithm = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa-2048' | 'rsa-3072';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048', 'rsa-3072'];

export function isKeyAlgorithm(s: string): s is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(s);
}

export function generateKeyPair(alg: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (alg) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
  }
}

/** What a public key is, in the words a profile or an audit needs. */
export interface PublicKeyInfo {
  /** e.g. 'ec-p256', 'ed25519', 'rsa-2048', 'rsa-4096'. */
  readonly algorithm: string;
  readonly type: 'ec' | 'ed25519' | 'rsa';
  readonly bits: number;
  readonly key: KeyObject;
  /** DER SubjectPublicKeyInfo, byte-exact as received. */
  readonly spki: Buffer;
}

/**
 * Imports a DER SubjectPublicKeyInfo and refuses weak or unknown keys.
 * EC keys are imported as JWK: OpenSSL 3's DER decoder costs 113–125 µs per
 * key here against 68–95 µs for the JWK path (bench/issue.ts), and this runs
 * once per issued certificate.
 */
export function importSpki(spki: Uint8Array): PublicKeyInfo {
  const der = Buffer.from(spki);
  const top = expect(der, 0, Tag.Sequence, der.length, 'SubjectPublicKeyInfo');
  if (top.end !== der.length) throw new PkiError('malformed-der', 'trailing bytes after SubjectPublicKeyInfo');
  const [algEl, keyEl] = children(der, top);
  if (!algEl || !keyEl || algEl.tag !== Tag.Sequence || keyEl.tag !== Tag.BitString) {
    throw new PkiError('malformed-der', 'SubjectPublicKeyInfo is not { AlgorithmIdentifier, BIT STRING }');
  }
  const [algOidEl, paramEl] = children(der, algEl);
  if (!algOidEl || algOidEl.tag !== Tag.Oid) throw new PkiError('malformed-der', 'bad public key AlgorithmIdentifier');
  const algOid = decodeOid(der, algOidEl);
  const bits = content(der, keyEl);
  if (bits[0] !== 0) throw new PkiError('malformed-der', 'public key BIT STRING has unused bits');
  const point = bits.subarray(1);
  try {
    if (algOid === OID.ecPublicKey) {
      if (!paramEl || paramEl.tag !== Tag.Oid) throw new PkiError('unsupported-algorithm', 'EC key without a named curve');
      const curve = decodeOid(der, paramEl);
      const size = curve === OID.secp256r1 ? 32 : curve === OID.secp384r1 ? 48 : 0;
      if (size === 0) throw new PkiError('unsupported-algorithm', `EC curve ${curve} is not accepted (P-256 and P-384 are)`);
      const crv = size === 32 ? 'P-256' : 'P-384';
      const key =
        point[0] === 4 && point.length === 1 + 2 * size
          ? createPublicKey({
              key: {
                kty: 'EC',
                crv,
                x: point.subarray(1, 1 + size).toString('base64url'),
                y: point.subarray(1 + size).toString('base64url'),
              },
              format: 'jwk',
            })
          : createPublicKey({ key: der, format: 'der', type: 'spki' });
      return { algorithm: size === 32 ? 'ec-p256' : 'ec-p384', type: 'ec', bits: size * 8, key, spki: der };
    }
    if (algOid === OID.ed25519) {
      if (paramEl) throw new PkiError('malformed-der', 'Ed25519 key must have absent parameters (RFC 8410 §3)');
      if (point.length !== 32) throw new PkiError('malformed-der', 'Ed25519 key must be 32 bytes');
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') }, format: 'jwk' });
      return { algorithm: 'ed25519', type: 'ed25519', bits: 256, key, spki: der };
    }
    if (algOid === OID.rsaEncryption) {
      const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
      const modulus = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (modulus < 2048) throw new PkiError('weak-key', `RSA key of ${modulus} bits is refused (at least 2048)`);
      return { algorithm: `rsa-${modulus}`, type: 'rsa', bits: modulus, key, spki: der };
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed-der', `public key cannot be imported: ${(err as Error).message}`, { cause: err });
  }
  throw new PkiError('unsupported-algorithm', `public key algorithm ${algOid} is not accepted`);
}

/** How a key signs: the AlgorithmIdentifier to embed and the digest to use. */
export interface SignatureScheme {
  readonly oid: string;
  /** DER AlgorithmIdentifier. */
  readonly algorithmId: Buffer;
  /** Digest name for node:crypto, or null for Ed25519. */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
}

function scheme(o: string, hash: SignatureScheme['hash'], withNull: boolean): SignatureScheme {
  // RFC 5758 §3.2: ECDSA identifiers omit parameters; RFC 4055 §5: RSA ones carry NULL.
  return { oid: o, algorithmId: withNull ? seq(oid(o), nullValue) : seq(oid(o)), hash };
}

const SCHEMES: Record<string, SignatureScheme> = {
  [OID.ecdsaWithSha256]: scheme(OID.ecdsaWithSha256, 'sha256', false),
  [OID.ecdsaWithSha384]: scheme(OID.ecdsaWithSha384, 'sha384', false),
  [OID.ecdsaWithSha512]: scheme(OID.ecdsaWithSha512, 'sha512', false),
  [OID.sha256WithRsa]: scheme(OID.sha256WithRsa, 'sha256', true),
  [OID.sha384WithRsa]: scheme(OID.sha384WithRsa, 'sha384', true),
  [OID.sha512WithRsa]: scheme(OID.sha512WithRsa, 'sha512', true),
  [OID.ed25519]: scheme(OID.ed25519, null, false),
};

export function schemeByOid(o: string): SignatureScheme {
  const s = SCHEMES[o];
  if (!s) throw new PkiError('unsupported-algorithm', `signature algorithm ${o} is not accepted`);
  return s;
}

/** The scheme a CA key signs with: the digest grows with the curve (RFC 5480 §4). */
export function schemeForKey(key: KeyObject): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return SCHEMES[OID.ecdsaWithSha256]!;
    if (curve === 'secp384r1') return SCHEMES[OID.ecdsaWithSha384]!;
    throw new PkiError('unsupported-algorithm', `EC curve ${curve} cannot sign here`);
  }
  if (type === 'ed25519') return SCHEMES[OID.ed25519]!;
  if (type === 'rsa') return SCHEMES[OID.sha256WithRsa]!;
  throw new PkiError('unsupported-algorithm', `key type ${type} cannot sign here`);
}

export function signWith(s: SignatureScheme, data: Uint8Array, key: KeyObject): Buffer {
  return sign(s.hash, data, key);
}

export function verifyWith(s: SignatureScheme, data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  try {
    return verify(s.hash, data, key, signature);
  } catch {
    // A signature that is not even well-formed DER (r, s) is simply invalid.
    return false;
  }
}

/**
 * Parses a DER AlgorithmIdentifier and returns its scheme. Parameters must be
 * absent or NULL; anything else (e.g. RSASSA-PSS parameters) is refused.
 */
export function schemeFromAlgorithmId(buf: Uint8Array, offset: number, limit: number): SignatureScheme {
  const el = expect(buf, offset, Tag.Sequence, limit, 'AlgorithmIdentifier');
  const [oidEl, paramEl, extra] = children(buf, el);
  if (!oidEl || oidEl.tag !== Tag.Oid || extra) throw new PkiError('malformed-der', 'bad AlgorithmIdentifier');
  if (paramEl && !(paramEl.tag === Tag.Null && paramEl.end === paramEl.contentStart)) {
    throw new PkiError('unsupported-algorithm', 'signature algorithm parameters are not accepted');
  }
  return schemeByOid(decodeOid(buf, oidEl));
}

export function describeKey(key: KeyObject): string {
  const spki = key.export({ format: 'der', type: 'spki' });
  return importSpki(spki).algorithm;
}

