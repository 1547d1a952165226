/**
 * The checks behind registering a CA made outside certfleet (external-cas.ts),
 * pure functions of certificates and a clock.
 *
 * Proof of possession follows AWS IoT's: certfleet hands out a random
 * registration code; whoever holds the CA key makes a verification
 * certificate whose subject CN is that code and signs it with the CA key. The
 * signature proves the key is at hand now (the code is fresh and single use),
 * not merely the public CA certificate, which anyone can copy.
 */
import { Certificate, OID, verifyWith } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { CaRecord } from '../store/index.js';

/** Curves and sizes certfleet accepts for a CA key (DESIGN.md "Security baseline": RSA < 2048 and unknown curves are weak). */
const ACCEPTED_KEYS = /^(ec-p256|ec-p384|ed25519|rsa-(\d+))$/;

/** Parses one PEM certificate; anything else is a 'malformed-pem' or 'malformed-der' (PkiError, lifted at the edge). */
export function certificateFromPem(pem: unknown, field: string): Certificate {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CertfleetError('malformed-pem', `${field}: a PEM certificate (-----BEGIN CERTIFICATE-----) is required`);
  }
  return Certificate.fromPem(pem);
}

const issuedBy = (child: Certificate, parent: Certificate): boolean =>
  child.issuerDer.equals(parent.subjectDer) && verifyWith(child.signatureScheme(), child.tbs, parent.publicKey, child.signature);

/**
 * A certificate fit to anchor device paths (RFC 5280 §4.2.1.9, §4.2.1.3):
 * basicConstraints cA=true; keyUsage, when present (RFC 5280 requires it, but
 * `openssl req -x509` omits it by default, and chain validation accepts its
 * absence as path validation does), must include keyCertSign; inside its
 * validity period at `at`; a key certfleet accepts.
 */
export function checkCaCertificate(cert: Certificate, at: Date): void {
  const bc = cert.basicConstraints();
  if (!bc?.ca) throw new CertfleetError('chain-invalid', `${cert.subject()} is not a CA certificate (basicConstraints cA is not set)`);
  const ku = cert.keyUsage();
  if (ku && !ku.includes('keyCertSign')) throw new CertfleetError('chain-invalid', `${cert.subject()} may not sign certificates (keyUsage lacks keyCertSign)`);
  if (at < cert.notBefore()) throw new CertfleetError('chain-invalid', `${cert.subject()} is not valid until ${cert.notBefore().toISOString()}`);
  if (at > cert.notAfter()) throw new CertfleetError('chain-invalid', `${cert.subject()} expired at ${cert.notAfter().toISOString()}`);
  const alg = cert.keyAlgorithm();
  const m = ACCEPTED_KEYS.exec(alg);
  if (!m) throw new CertfleetError('unsupported-algorithm', `a CA key ${alg} is not accepted (EC P-256/P-384, Ed25519, RSA >= 2048)`);
  if (m[2] !== undefined && Number(m[2]) < 2048) throw new CertfleetError('weak-key', `a CA key ${alg} is too weak (RSA needs at least 2048 bits)`);
}

/**
 * Where the CA certificate sits: a self-signed root (parent null), or issued
 * by a registered CA (that CA's id). Anything else is refused: certfleet
 * anchors device paths only on what it can place, so an intermediate whose
 * issuer is not registered must come with (after) that issuer.
 */
export function placeCaCertificate(cert: Certificate, registered: readonly CaRecord[]): { parentId: string | null } {
  if (cert.isSelfIssued && issuedBy(cert, cert)) return { parentId: null };
  for (const ca of registered) {
    let parent: Certificate;
    try {
      parent = Certificate.fromDer(ca.certificateDer);
    } catch {
      continue;
    }
    if (issuedBy(cert, parent)) return { parentId: ca.id };
  }
  throw new CertfleetError('chain-invalid', `${cert.subject()} is neither self-signed nor issued by a registered CA (issuer ${cert.issuer()}): register its issuer first`);
}

/**
 * Checks the verification certificate against the CA certificate and returns
 * the registration code it carries (its subject's last, most specific CN).
 * Whether that code is one certfleet handed out, unspent and unexpired, is
 * for the store to settle in the registering transaction.
 */
export function registrationCodeOf(ca: Certificate, verification: Certificate): string {
  if (!verification.issuerDer.equals(ca.subjectDer)) {
    throw new CertfleetError('bad-signature', `the verification certificate's issuer (${verification.issuer()}) is not the CA (${ca.subject()})`);
  }
  if (!verifyWith(verification.signatureScheme(), verification.tbs, ca.publicKey, verification.signature)) {
    throw new CertfleetError('bad-signature', 'the verification certificate is not signed by the key of the CA certificate');
  }
  const cn = verification.subjectAttributes().filter((a) => a.type === OID.commonName).at(-1)?.value;
  if (!cn) throw new CertfleetError('bad-request', 'the verification certificate has no subject CN: it must be the registration code');
  return cn;
}
