/**
 * Domain records the store hands out and takes in. camelCase, `Date` for
 * times, `Buffer` for DER and sealed keys; the snake_case rows and ISO-8601
 * text columns stay inside the store.
 */

export type CaKind = 'root' | 'intermediate' | 'external';
export type CaStatus = 'active' | 'inactive' | 'revoked';

export interface CaRecord {
  id: string;
  name: string;
  parentId: string | null;
  kind: CaKind;
  status: CaStatus;
  keyAlgorithm: string;
  subject: string;
  serial: string;
  certificateDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  pathLen: number | null;
  createdAt: Date;
}

/** What insertCa/createCaWithKey accept: the DER may be any byte view. */
export type NewCa = Omit<CaRecord, 'certificateDer'> & { certificateDer: Uint8Array };

export interface CaKeyRecord {
  caId: string;
  /** Which signer key store sealed the key, e.g. 'sealed-file' or 'pkcs11'. */
  keyStore: string;
  sealed: Buffer;
  createdAt: Date;
}

export interface NewCaKey {
  keyStore: string;
  sealed: Uint8Array;
}

/** Recorded before signing, so a crash after signing never leaves an unknown serial. */
export interface IssuanceIntent {
  serial: string;
  issuerId: string;
  profile: string;
  tbsDer: Uint8Array;
  createdAt: Date;
}

export type CertificateStatus =
  | 'active'
  | 'inactive'
  | 'revoked'
  | 'pending-activation'
  | 'pending-transfer';

export interface CertificateRecord {
  /** SHA-256 fingerprint of the DER, lowercase hex. */
  id: string;
  serial: string;
  issuerId: string;
  thingName: string | null;
  status: CertificateStatus;
  profile: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: string;
  der: Buffer;
  createdAt: Date;
  revokedAt: Date | null;
  revocationReason: string | null;
}

export type NewCertificate = Omit<CertificateRecord, 'der' | 'revokedAt' | 'revocationReason'> & {
  der: Uint8Array;
  revokedAt?: Date | null;
  revocationReason?: string | null;
};

export interface CertificateFilter {
  status?: CertificateStatus;
  thing?: string;
  issuerId?: string;
  /** Certificates whose notAfter is strictly before this instant (already expired included). */
  expiringBefore?: Date;
}

export interface PageRequest {
  limit: number;
  /** Opaque, from a previous page's `next`. */
  cursor?: string;
}

export type CertificateQuery = CertificateFilter & PageRequest;

export interface Page<T> {
  items: T[];
  /** Present only when more items may follow. */
  next?: string;
}

export type ThingAttributes = Record<string, string>;

export interface ThingRecord {
  name: string;
  attributes: ThingAttributes;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewThing {
  name: string;
  attributes?: ThingAttributes;
}

export interface TokenRecord {
  id: string;
  name: string;
  /** Only the hash is stored; the token itself is shown once and never kept. */
  tokenHash: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export type NewToken = Omit<TokenRecord, 'revokedAt' | 'lastUsedAt'>;
