/**
 * Certification path validation (RFC 5280 §6, the parts a device PKI needs):
 * signatures, validity, basic constraints, path length, key usage and the
 * leaf's extended key usage. Name constraints and policies are not issued by
 * certfleet and a certificate that marks them critical is refused.
 */
import { PkiError } from './errors.js';
import { verifyWith } from './keys.js';
import { OID } from './oids.js';
import type { Certificate } from './certificate.js';

export interface ChainOptions {
  /** Untrusted intermediates, e.g. what a TLS peer sent. */
  readonly intermediates?: readonly Certificate[];
  /** Trust anchors. */
  readonly roots: readonly Certificate[];
  readonly at: Date;
  /** Extended key usage the leaf must allow (e.g. OID.clientAuth). */
  readonly purpose?: string;
  readonly maxDepth?: number;
}

/** Extensions this validator understands; a critical one outside this list fails validation (§4.2). */
const UNDERSTOOD = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.crlDistributionPoints,
  OID.authorityInfoAccess,
]);

function invalid(why: string): never {
  throw new PkiError('chain-invalid', why);
}

function issuedBy(child: Certificate, parent: Certificate): boolean {
  if (!child.issuerDer.equals(parent.subjectDer)) return false;
  const aki = child.authorityKeyIdentifier();
  const ski = parent.subjectKeyIdentifier();
  if (aki && ski && !aki.equals(ski)) return false;
  return verifyWith(child.signatureScheme(), child.tbs, parent.publicKey, child.signature);
}

function checkCert(c: Certificate, at: Date, role: string): void {
  if (at < c.notBefore()) invalid(`${role} ${c.subject()} is not valid until ${c.notBefore().toISOString()}`);
  if (at > c.notAfter()) invalid(`${role} ${c.subject()} expired at ${c.notAfter().toISOString()}`);
}

function checkCa(c: Certificate, belowNonSelfIssued: number): void {
  const bc = c.basicConstraints();
  if (!bc?.ca) invalid(`${c.subject()} is not a CA (basicConstraints cA is not set)`);
  const ku = c.keyUsage();
  if (ku && !ku.includes('keyCertSign')) invalid(`${c.subject()} may not sign certificates (keyUsage lacks keyCertSign)`);
  if (bc.pathLen !== null && belowNonSelfIssued > bc.pathLen) {
    invalid(`${c.subject()} allows ${bc.pathLen} intermediate(s) below it, the path has ${belowNonSelfIssued}`);
  }
}

function checkCritical(c: Certificate): void {
  const unknown = c.criticalExtensionIds().filter((id) => !UNDERSTOOD.has(id));
  if (unknown.length > 0) invalid(`${c.subject()} has critical extensions this validator does not process: ${unknown.join(', ')}`);
}

/** Returns the validated path, leaf first, ending with the trust anchor. */
export function validateChain(leaf: Certificate, opts: ChainOptions): Certificate[] {
  const maxDepth = opts.maxDepth ?? 8;
  const pool = [...(opts.intermediates ?? []), ...opts.roots];
  const isRoot = (c: Certificate) => opts.roots.some((r) => r.der.equals(c.der));

  checkCert(leaf, opts.at, 'certificate');
  if (opts.purpose) {
    const eku = leaf.extKeyUsage();
    if (eku && !eku.includes(opts.purpose)) invalid(`certificate ${leaf.subject()} does not allow purpose ${opts.purpose}`);
  }
  const leafBc = leaf.basicConstraints();
  const ku = leaf.keyUsage();
  if (ku && !ku.includes('digitalSignature') && !ku.includes('keyAgreement') && !ku.includes('keyEncipherment') && !leafBc?.ca) {
    invalid(`certificate ${leaf.subject()} key usage allows no TLS authentication`);
  }
  checkCritical(leaf);

  let lastError = `no trusted issuer found for ${leaf.issuer()}`;
  const search = (path: Certificate[]): Certificate[] | undefined => {
    const current = path[path.length - 1]!;
    if (isRoot(current) && path.length > 1) return path;
    if (path.length > maxDepth) {
      lastError = `path longer than ${maxDepth}`;
      return undefined;
    }
    for (const candidate of pool) {
      if (path.some((p) => p.der.equals(candidate.der)) || !issuedBy(current, candidate)) continue;
      try {
        checkCert(candidate, opts.at, 'issuer');
        // §6.1.4 (l)/(m): count the non-self-issued intermediates between this CA and the leaf.
        checkCa(candidate, path.slice(1).filter((c) => !c.isSelfIssued).length);
        checkCritical(candidate);
      } catch (err) {
        lastError = (err as Error).message;
        continue;
      }
      const found = search([...path, candidate]);
      if (found) return found;
    }
    return undefined;
  };
  // A leaf that is itself a trust anchor (e.g. a pinned self-signed device) is valid on its own.
  if (isRoot(leaf)) return [leaf];
  const path = search([leaf]);
  if (!path) invalid(lastError);
  return path;
}

