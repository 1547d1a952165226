import type {
  CaKeyRecord,
  CaRecord,
  CaStatus,
  CertificateFilter,
  CertificateQuery,
  CertificateRecord,
  IssuanceIntent,
  NewCa,
  NewCaKey,
  NewCertificate,
  NewThing,
  NewToken,
  Page,
  PageRequest,
  ThingRecord,
  TokenRecord,
} from './records.js';

/*
 * One narrow interface per consumer (STYLE.md, after Boulder's storage
 * authority): a module that only needs to read certificates is handed a
 * CertificateStore, never the whole Store. Lookups return `undefined` for a
 * missing row; the caller decides whether that is an error. Writes throw
 * CertfleetError: 'conflict' on a duplicate, 'not-found' on a missing
 * referenced row, 'bad-request' on input the schema cannot hold,
 * 'unavailable' when the database cannot be reached or is busy.
 */

export interface CaStore {
  insertCa(ca: NewCa): Promise<void>;
  getCa(id: string): Promise<CaRecord | undefined>;
  getCaByName(name: string): Promise<CaRecord | undefined>;
  /** All CAs, oldest first (so roots come before what they signed). */
  listCas(): Promise<CaRecord[]>;
  setCaStatus(id: string, status: CaStatus): Promise<void>;
}

/** Only the signer holds this one: sealed CA keys never leave it. */
export interface CaKeyStore {
  /** Insert-only: a CA's key is never replaced (that would orphan what it signed). */
  putCaKey(caId: string, keyStore: string, sealed: Uint8Array): Promise<void>;
  getCaKey(caId: string): Promise<CaKeyRecord | undefined>;
  /** The CA row and its sealed key in one transaction: never a CA without its key. */
  createCaWithKey(ca: NewCa, key: NewCaKey): Promise<void>;
}

export interface IssuanceJournal {
  /** Throws 'conflict' if the serial was ever recorded: a serial is never reused. */
  recordIntent(intent: IssuanceIntent): Promise<void>;
  hasSerial(serial: string): Promise<boolean>;
}

export interface CertificateStore {
  /** One INSERT; 'not-found' if the thing or issuer does not exist, 'conflict' on a duplicate id or serial. */
  insertCertificate(certificate: NewCertificate): Promise<void>;
  getCertificate(id: string): Promise<CertificateRecord | undefined>;
  getCertificateBySerial(serial: string): Promise<CertificateRecord | undefined>;
  /** Keyset pagination ordered by (createdAt, id); a bad cursor is 'bad-request'. */
  listCertificates(query: CertificateQuery): Promise<Page<CertificateRecord>>;
  countCertificates(filter?: CertificateFilter): Promise<number>;
}

export interface ThingStore {
  createThing(thing: NewThing): Promise<ThingRecord>;
  getThing(name: string): Promise<ThingRecord | undefined>;
  /** Ordered by name. */
  listThings(page: PageRequest): Promise<Page<ThingRecord>>;
}

export interface TokenStore {
  insertToken(token: NewToken): Promise<void>;
  /** Returns revoked and expired tokens too: the caller decides what they mean. */
  findTokenByHash(tokenHash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  /** Idempotent: revoking twice keeps the first revocation time. */
  revokeToken(id: string, at?: Date): Promise<void>;
  /** Records a use; coarse (see tokens.ts) so the auth path rarely writes. */
  touchToken(id: string, at: Date): Promise<void>;
}

export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string): Promise<void>;
}
