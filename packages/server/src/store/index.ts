/*
 * The storage layer: the only code in certfleet that speaks SQL or imports a
 * database driver (DESIGN.md, "only store imports the database drivers").
 * Consumers import interfaces and records from here; they never see Kysely,
 * rows or SQLSTATEs.
 */
export { openStore, type OpenStoreOptions } from './open.js';
export type { Store } from './store.js';
export type { StoreDialect } from './schema.js';
export { MAX_PAGE_SIZE } from './cursor.js';
export type {
  CaKeyStore,
  CaStore,
  CertificateStore,
  IssuanceJournal,
  SettingsStore,
  ThingStore,
  TokenStore,
} from './interfaces.js';
export type {
  CaKeyRecord,
  CaKind,
  CaRecord,
  CaStatus,
  CertificateFilter,
  CertificateQuery,
  CertificateRecord,
  CertificateStatus,
  IssuanceIntent,
  NewCa,
  NewCaKey,
  NewCertificate,
  NewThing,
  NewToken,
  Page,
  PageRequest,
  ThingAttributes,
  ThingRecord,
  TokenRecord,
} from './records.js';
