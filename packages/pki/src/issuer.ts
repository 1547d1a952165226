/** IssuerInfo from a CA certificate: everything a template needs, read from public data. */
import type { Certificate } from './certificate.js';
import { PkiError } from './errors.js';
import { keyIdentifier } from './extensions.js';
import { schemeForKey } from './keys.js';
import type { IssuerInfo } from './template.js';

export function issuerInfoFromCertificate(id: string, cert: Certificate, urls?: IssuerInfo['urls']): IssuerInfo {
  const bc = cert.basicConstraints();
  if (!bc?.ca) throw new PkiError('chain-invalid', `${cert.subject()} is not a CA certificate`);
  return {
    id,
    subjectDer: cert.subjectDer,
    // RFC 5280 §4.2.1.1: the AKI of issued certificates repeats the issuer's SKI.
    keyIdentifier: cert.subjectKeyIdentifier() ?? keyIdentifier(cert.spki),
    scheme: schemeForKey(cert.publicKey),
    notBefore: cert.notBefore(),
    notAfter: cert.notAfter(),
    pathLen: bc.pathLen,
    ...(urls ? { urls } : {}),
  };
}

/**
 * The issuer of a self-signed certificate (a root): itself. Its bounds are
 * open, so the profile alone decides the root's validity.
 */
export function selfIssuerInfo(id: string, subjectDer: Buffer, spki: Buffer, key: Parameters<typeof schemeForKey>[0]): IssuerInfo {
  return {
    id,
    subjectDer,
    keyIdentifier: keyIdentifier(spki),
    scheme: schemeForKey(key),
    notBefore: new Date(0),
    notAfter: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
    pathLen: null,
  };
}
