/** @certfleet/pki: X.509 for certfleet's server and agent. Pure: no I/O, no database. */
export { PkiError, type PkiErrorCode } from './errors.js';
export { OID } from './oids.js';
export { decodePem, decodePemBlocks, encodePem, type PemBlock } from './pem.js';
export {
  generateKeyPair,
  importSpki,
  isKeyAlgorithm,
  KEY_ALGORITHMS,
  schemeForKey,
  signWith,
  verifyWith,
  type KeyAlgorithm,
  type PublicKeyInfo,
  type SignatureScheme,
} from './keys.js';
export { commonName, decodeName, encodeName, formatName, parseName, type NameAttribute } from './name.js';
export { parseGeneralName, type GeneralName } from './general-name.js';
export { parseCsr, verifyCsr, type ParsedCsr, type VerifiedCsr } from './csr.js';
export { keyIdentifier, type KeyUsageBit } from './extensions.js';
export { isProfileName, PROFILES, withPathLen, withValidity, type Profile, type ProfileName } from './profile.js';
export { assembleCertificate, CertificateTemplate, sha256Hex, type IssuerInfo, type TbsFields } from './template.js';
export { isPrepared, newSerial, prepareIssuance, type IssuanceRequest, type PreparedIssuance } from './prepare.js';
export { Certificate } from './certificate.js';
export { validateChain, type ChainOptions } from './chain.js';
export { issuerInfoFromCertificate, selfIssuerInfo } from './issuer.js';
export { buildCsr, buildCsrPem, type CsrInput } from './csr-build.js';
export {
  isReasonCode,
  isRevocationReason,
  parseReason,
  reasonName,
  REVOCATION_REASONS,
  type RevocationReason,
  type RevocationReasonCode,
} from './revocation-reason.js';
export { assembleCrl, isPreparedCrl, prepareCrl, type CrlEntry, type CrlRequest, type PreparedCrl } from './crl.js';
export { parseCrl, verifyCrl, type ParsedCrl, type ParsedCrlEntry } from './crl-parse.js';
export { certIdFor, certIdHashes, certIdKey, parseOcspRequest, type CertId, type OcspHashAlgorithm, type OcspRequest } from './ocsp-request.js';
export {
  assembleOcspResponse,
  buildBasicOcspResponse,
  isPreparedOcspResponse,
  ocspErrorResponse,
  responderIdFor,
  type OcspCertStatus,
  type OcspErrorStatus,
  type OcspResponseInput,
  type PreparedOcspResponse,
  type ResponderId,
  type SingleResponseInput,
} from './ocsp-response.js';
export { OCSP_RESPONDER_PROFILE, ocspNoCheckExtension } from './ocsp-profile.js';
export { certsOnlyPkcs7 } from './pkcs7.js';
