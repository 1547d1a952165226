import * as cas from './cas.js';
import * as certificates from './certificates.js';
import * as journal from './journal.js';
import * as settings from './settings.js';
import * as things from './things.js';
import * as tokens from './tokens.js';
import type {
  CaKeyStore,
  CaStore,
  CertificateStore,
  IssuanceJournal,
  SettingsStore,
  ThingStore,
  TokenStore,
} from './interfaces.js';
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
import type { Db, StoreDialect } from './schema.js';

/**
 * The one object that holds the database connection. It implements every
 * consumer interface by handing its connection to the per-table module; wiring
 * code (cmd/ in Boulder's terms) passes each consumer only the interface it
 * needs. Made by openStore().
 */
export class Store
  implements CaStore, CaKeyStore, IssuanceJournal, CertificateStore, ThingStore, TokenStore, SettingsStore
{
  #db: Db;
  #now: () => Date;
  #closing: Promise<void> | undefined;

  /** @internal Use openStore(): it configures the connection and migrates. */
  constructor(
    readonly dialect: StoreDialect,
    db: Db,
    now: () => Date,
  ) {
    this.#db = db;
    this.#now = now;
  }

  /** Closes the connection (or pool). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#db.destroy();
    return this.#closing;
  }

  // CaStore
  insertCa(ca: NewCa): Promise<void> {
    return cas.insertCa(this.#db, ca);
  }
  getCa(id: string): Promise<CaRecord | undefined> {
    return cas.getCa(this.#db, id);
  }
  getCaByName(name: string): Promise<CaRecord | undefined> {
    return cas.getCaByName(this.#db, name);
  }
  listCas(): Promise<CaRecord[]> {
    return cas.listCas(this.#db);
  }
  setCaStatus(id: string, status: CaStatus): Promise<void> {
    return cas.setCaStatus(this.#db, id, status);
  }

  // CaKeyStore
  putCaKey(caId: string, keyStore: string, sealed: Uint8Array): Promise<void> {
    return cas.putCaKey(this.#db, caId, { keyStore, sealed }, this.#now());
  }
  getCaKey(caId: string): Promise<CaKeyRecord | undefined> {
    return cas.getCaKey(this.#db, caId);
  }
  createCaWithKey(ca: NewCa, key: NewCaKey): Promise<void> {
    return cas.createCaWithKey(this.#db, ca, key);
  }

  // IssuanceJournal
  recordIntent(intent: IssuanceIntent): Promise<void> {
    return journal.recordIntent(this.#db, intent);
  }
  hasSerial(serial: string): Promise<boolean> {
    return journal.hasSerial(this.#db, serial);
  }

  // CertificateStore
  insertCertificate(certificate: NewCertificate): Promise<void> {
    return certificates.insertCertificate(this.#db, certificate);
  }
  getCertificate(id: string): Promise<CertificateRecord | undefined> {
    return certificates.getCertificate(this.#db, id);
  }
  getCertificateBySerial(serial: string): Promise<CertificateRecord | undefined> {
    return certificates.getCertificateBySerial(this.#db, serial);
  }
  listCertificates(query: CertificateQuery): Promise<Page<CertificateRecord>> {
    return certificates.listCertificates(this.#db, query);
  }
  countCertificates(filter?: CertificateFilter): Promise<number> {
    return certificates.countCertificates(this.#db, filter);
  }

  // ThingStore
  createThing(thing: NewThing): Promise<ThingRecord> {
    return things.createThing(this.#db, thing, this.#now());
  }
  getThing(name: string): Promise<ThingRecord | undefined> {
    return things.getThing(this.#db, name);
  }
  listThings(page: PageRequest): Promise<Page<ThingRecord>> {
    return things.listThings(this.#db, page);
  }

  // TokenStore
  insertToken(token: NewToken): Promise<void> {
    return tokens.insertToken(this.#db, token);
  }
  findTokenByHash(tokenHash: string): Promise<TokenRecord | undefined> {
    return tokens.findTokenByHash(this.#db, tokenHash);
  }
  listTokens(): Promise<TokenRecord[]> {
    return tokens.listTokens(this.#db);
  }
  revokeToken(id: string, at?: Date): Promise<void> {
    return tokens.revokeToken(this.#db, id, at ?? this.#now());
  }
  touchToken(id: string, at: Date): Promise<void> {
    return tokens.touchToken(this.#db, id, at);
  }

  // SettingsStore
  getSetting(key: string): Promise<string | undefined> {
    return settings.getSetting(this.#db, key);
  }
  putSetting(key: string, value: string): Promise<void> {
    return settings.putSetting(this.#db, key, value);
  }
}
