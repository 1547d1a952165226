/**
 * The delegated OCSP responder certificate (RFC 6960 §4.2.2.2): issued by
 * the CA whose certificates it answers for, with id-kp-OCSPSigning, so the
 * CA key signs one certificate a month instead of every response.
 *
 * id-pkix-ocsp-nocheck (§4.2.2.2.1) tells clients not to check the
 * responder certificate's own revocation, which would loop; the price is
 * that a compromised responder key stays trusted until the certificate
 * expires, hence the short validity ("CAs SHOULD issue with a short
 * lifetime and renew frequently").
 *
 * The template writes fixed extensions from profile fields only, so the
 * extension needs a Profile field `ocspNoCheck?: boolean` that
 * CertificateTemplate turns into ocspNoCheckExtension() beside the other
 * fixed extensions. Until then a certificate from this profile lacks it;
 * OpenSSL and most clients accept a delegated responder without it.
 */
import { nullValue } from './der.js';
import { extension } from './extensions.js';
import { OID } from './oids.js';
import type { Profile } from './profile.js';

/** §4.2.2.2.1: id-pkix-ocsp-nocheck, extnValue NULL, non-critical. */
export const ocspNoCheckExtension = (): Buffer => extension(OID.ocspNoCheck, false, nullValue);

export const OCSP_RESPONDER_PROFILE = {
  name: 'ocsp-responder',
  ca: false,
  validityDays: 30,
  maxValidityDays: 90,
  keyUsage: ['digitalSignature'],
  extKeyUsage: [OID.ocspSigning],
  subjectAttributes: [OID.commonName, OID.organization, OID.organizationalUnit, OID.country],
  sanTypes: [],
  sanRequired: false,
  // Not Ed25519: few OCSP clients verify EdDSA responses yet. RSA keys also
  // get keyEncipherment from the template's end-entity rule; harmless here.
  keyAlgorithms: ['ec-p256', 'ec-p384', 'rsa-'],
  backdateSeconds: 3600,
  ocspNoCheck: true,
} as const satisfies Profile & { readonly ocspNoCheck: true };
