/**
 * PKCS#10 certification requests (RFC 2986): parse and verify. This is on the
 * issuance hot path, so it walks the DER directly (see der.ts for the figure);
 * the structure is checked as strictly as a schema parser would.
 */
import { children, content, decodeOid, expect, slice, Tag, type Element } from './der.js';
import { PkiError } from './errors.js';
import { decodeGeneralNames, type GeneralName } from './general-name.js';
import { importSpki, schemeFromAlgorithmId, verifyWith, type PublicKeyInfo, type SignatureScheme } from './keys.js';
import { decodeName, type NameAttribute } from './name.js';
import { OID } from './oids.js';

export interface ParsedCsr {
  /** DER of certificationRequestInfo: the signed bytes. */
  readonly info: Buffer;
  readonly subject: readonly NameAttribute[];
  readonly subjectDer: Buffer;
  readonly spki: Buffer;
  /** subjectAltName entries asked for in an extensionRequest attribute. */
  readonly requestedSans: readonly GeneralName[];
  /** OIDs of every extension requested (the profile decides which, if any, to honour). */
  readonly requestedExtensions: readonly string[];
  readonly challengePassword?: string;
  readonly signatureScheme: SignatureScheme;
  readonly signature: Buffer;
  /** The whole request. */
  readonly der: Buffer;
}

export interface VerifiedCsr extends ParsedCsr {
  readonly publicKey: PublicKeyInfo;
}

function fail(msg: string): never {
  throw new PkiError('malformed-csr', msg);
}

function parseExtensionRequest(buf: Buffer, valueSet: Element): { sans: GeneralName[]; oids: string[] } {
  const [exts, extra] = children(buf, valueSet);
  if (!exts || extra || exts.tag !== Tag.Sequence) fail('extensionRequest must hold one Extensions value');
  const sans: GeneralName[] = [];
  const oids: string[] = [];
  for (const ext of children(buf, exts)) {
    const parts = children(buf, ext);
    const idEl = parts[0];
    const valueEl = parts[parts.length - 1];
    if (!idEl || idEl.tag !== Tag.Oid || !valueEl || valueEl.tag !== Tag.OctetString || parts.length > 3) fail('bad requested extension');
    const id = decodeOid(buf, idEl);
    if (oids.includes(id)) fail(`extension ${id} requested twice`);
    oids.push(id);
    if (id === OID.subjectAltName) sans.push(...decodeGeneralNames(content(buf, valueEl)));
  }
  return { sans, oids };
}

/** Parses a DER CSR without verifying its signature. */
export function parseCsr(input: Uint8Array): ParsedCsr {
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    const top = expect(der, 0, Tag.Sequence, der.length, 'CertificationRequest');
    if (top.end !== der.length) fail('trailing bytes after the request');
    const [infoEl, algEl, sigEl, extra] = children(der, top);
    if (!infoEl || !algEl || !sigEl || extra) fail('CertificationRequest must have three parts');
    if (infoEl.tag !== Tag.Sequence || sigEl.tag !== Tag.BitString) fail('bad CertificationRequest structure');
    const scheme = schemeFromAlgorithmId(der, algEl.start, algEl.end);

    const [versionEl, subjectEl, spkiEl, attrsEl, more] = children(der, infoEl);
    if (!versionEl || !subjectEl || !spkiEl || !attrsEl || more) fail('certificationRequestInfo must have four parts');
    const version = content(der, versionEl);
    if (versionEl.tag !== Tag.Integer || version.length !== 1 || version[0] !== 0) fail('version must be v1 (0)');
    if (spkiEl.tag !== Tag.Sequence) fail('bad subjectPKInfo');
    // attributes [0] IMPLICIT SET OF Attribute (RFC 2986 §4.1)
    if (attrsEl.tag !== 0xa0) fail('attributes [0] missing');

    let sans: GeneralName[] = [];
    let extOids: string[] = [];
    let challengePassword: string | undefined;
    for (const attr of children(der, attrsEl)) {
      const [typeEl, valuesEl, x] = children(der, attr);
      if (!typeEl || !valuesEl || x || typeEl.tag !== Tag.Oid || valuesEl.tag !== Tag.Set) fail('bad attribute');
      const type = decodeOid(der, typeEl);
      if (type === OID.extensionRequest) ({ sans, oids: extOids } = parseExtensionRequest(der, valuesEl));
      else if (type === OID.challengePassword) {
        const [v] = children(der, valuesEl);
        if (v) challengePassword = content(der, v).toString('utf8');
      }
    }

    const sigBits = content(der, sigEl);
    if (sigBits[0] !== 0) fail('signature BIT STRING has unused bits');
    return {
      info: slice(der, infoEl),
      subject: decodeName(der, subjectEl.start, subjectEl.end),
      subjectDer: slice(der, subjectEl),
      spki: slice(der, spkiEl),
      requestedSans: sans,
      requestedExtensions: extOids,
      ...(challengePassword !== undefined ? { challengePassword } : {}),
      signatureScheme: scheme,
      signature: sigBits.subarray(1),
      der,
    };
  } catch (err) {
    if (err instanceof PkiError && err.code === 'malformed-der') throw new PkiError('malformed-csr', err.message, { cause: err });
    throw err;
  }
}

/**
 * Parses a CSR, imports its key (refusing weak or unknown ones) and checks
 * the proof of possession: the request's own signature (RFC 2986 §3).
 */
export function verifyCsr(input: Uint8Array): VerifiedCsr {
  const csr = parseCsr(input);
  const publicKey = importSpki(csr.spki);
  const scheme = csr.signatureScheme;
  if ((publicKey.type === 'ed25519') !== (scheme.hash === null) || (publicKey.type === 'ec') !== scheme.oid.startsWith('1.2.840.10045')) {
    throw new PkiError('bad-signature', 'CSR signature algorithm does not match its key');
  }
  if (!verifyWith(scheme, csr.info, publicKey.key, csr.signature)) {
    throw new PkiError('bad-signature', 'CSR signature does not verify with its own public key');
  }
  return { ...csr, publicKey };
}
