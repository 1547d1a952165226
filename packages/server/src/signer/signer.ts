/**
 * The signer: the only code that holds CA private keys (DESIGN.md,
 * separation of duties). Its surface is deliberately small, as Boulder's CA:
 *  - generateKey: a new CA key pair; only the public half comes out;
 *  - sealedKey: the new key sealed for the store, for the CA record's transaction;
 *  - issue: signs a PreparedIssuance made by pki's prepareIssuance (profile
 *    applied, lints passed), after recording its serial and TBS bytes;
 *  - signCrl / signOcsp: sign a CRL or an OCSP response that pki prepared;
 *  - responder keys: OCSP responder keys live here too, in memory only (a
 *    node makes a fresh one for each responder certificate it rotates in).
 * There is no way to sign arbitrary bytes.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  assembleCertificate,
  assembleCrl,
  assembleOcspResponse,
  generateKeyPair,
  importSpki,
  isPrepared,
  isPreparedCrl,
  isPreparedOcspResponse,
  schemeForKey,
  signWith,
  type KeyAlgorithm,
  type PreparedCrl,
  type PreparedIssuance,
  type PreparedOcspResponse,
  type PublicKeyInfo,
} from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { CaKeyStore, IssuanceJournal, NewCaKey } from '../store/index.js';
import type { KeySealer } from './sealer.js';

export const SEALED_KEY_STORE = 'sealed-file';

export interface SignerDeps {
  readonly keys: Pick<CaKeyStore, 'getCaKey'>;
  readonly journal: IssuanceJournal;
  readonly sealer: KeySealer;
  readonly now: () => Date;
}

export class Signer {
  private readonly loaded = new Map<string, Promise<KeyObject>>();
  /** Keys generated for CAs whose records are not yet stored. */
  private readonly pending = new Map<string, KeyObject>();
  /** Delegated OCSP responder keys, never stored: a restart rotates them. */
  private readonly responders = new Map<string, KeyObject>();

  constructor(private readonly deps: SignerDeps) {}

  /** A new key pair for the CA `caId`; the private half stays here. */
  generateKey(caId: string, alg: KeyAlgorithm): PublicKeyInfo {
    if (this.pending.has(caId) || this.loaded.has(caId)) throw new CertfleetError('conflict', `CA ${caId} already has a key`);
    const { privateKey, publicKey } = generateKeyPair(alg);
    this.pending.set(caId, privateKey);
    return importSpki(publicKey.export({ format: 'der', type: 'spki' }));
  }

  /** The pending key of `caId`, sealed (AES-256-GCM) for storage with its CA record. */
  sealedKey(caId: string): NewCaKey {
    const key = this.pending.get(caId);
    if (!key) throw new CertfleetError('not-found', `no pending key for CA ${caId}`);
    return { keyStore: SEALED_KEY_STORE, sealed: this.deps.sealer.seal(caId, key.export({ format: 'der', type: 'pkcs8' })) };
  }

  /** Called once the CA record and its sealed key are stored. */
  keyStored(caId: string): void {
    const key = this.pending.get(caId);
    if (!key) return;
    this.pending.delete(caId);
    this.loaded.set(caId, Promise.resolve(key));
  }

  /** Forgets a pending key whose CA was never stored. */
  discardKey(caId: string): void {
    this.pending.delete(caId);
  }

  private key(caId: string): Promise<KeyObject> {
    const pending = this.pending.get(caId);
    if (pending) return Promise.resolve(pending);
    let k = this.loaded.get(caId);
    if (!k) {
      k = (async () => {
        const rec = await this.deps.keys.getCaKey(caId);
        if (!rec) throw new CertfleetError('not-found', `the signer holds no key for CA ${caId}`);
        if (rec.keyStore !== SEALED_KEY_STORE) throw new CertfleetError('unavailable', `key store ${rec.keyStore} is not available`);
        return createPrivateKey({ key: this.deps.sealer.unseal(caId, rec.sealed), format: 'der', type: 'pkcs8' });
      })();
      k.catch(() => this.loaded.delete(caId));
      this.loaded.set(caId, k);
    }
    return k;
  }

  /**
   * Signs an approved issuance. The serial and the TBS bytes are journalled
   * first (a duplicate serial fails there), so a crash after signing can
   * never leave a certificate the store does not know of.
   */
  async issue(p: PreparedIssuance): Promise<Buffer> {
    if (!isPrepared(p)) throw new CertfleetError('invalid-state', 'the signer only signs issuances prepared and linted by pki');
    const key = await this.key(p.issuerId);
    const scheme = this.checkedScheme(key, p.schemeOid, p.issuerId);
    await this.deps.journal.recordIntent({ serial: p.serial, issuerId: p.issuerId, profile: p.profile, tbsDer: p.tbs, createdAt: this.deps.now() });
    return assembleCertificate(p.tbs, scheme, signWith(scheme, p.tbs, key));
  }

  /**
   * Signs a manufacturing batch of approved issuances, as issue() does one:
   * every serial and TBS is journalled first, in one transaction (all or
   * none; 'conflict' if any serial was ever recorded), then each is signed.
   * The certificates come back in the order of `ps`.
   */
  async issueBatch(ps: readonly PreparedIssuance[]): Promise<Buffer[]> {
    const keys = new Map<string, { key: KeyObject; scheme: ReturnType<Signer['checkedScheme']> }>();
    for (const p of ps) {
      if (!isPrepared(p)) throw new CertfleetError('invalid-state', 'the signer only signs issuances prepared and linted by pki');
      const known = keys.get(p.issuerId);
      const key = known?.key ?? (await this.key(p.issuerId));
      const scheme = this.checkedScheme(key, p.schemeOid, p.issuerId);
      if (!known) keys.set(p.issuerId, { key, scheme });
    }
    const at = this.deps.now();
    await this.deps.journal.recordIntents(ps.map((p) => ({ serial: p.serial, issuerId: p.issuerId, profile: p.profile, tbsDer: p.tbs, createdAt: at })));
    return ps.map((p) => {
      const { key, scheme } = keys.get(p.issuerId)!;
      return assembleCertificate(p.tbs, scheme, signWith(scheme, p.tbs, key));
    });
  }

  /** Signs a CRL that pki prepared for one of this signer's CAs. */
  async signCrl(p: PreparedCrl): Promise<Buffer> {
    if (!isPreparedCrl(p)) throw new CertfleetError('invalid-state', 'the signer only signs CRLs prepared by pki');
    const key = await this.key(p.issuerId);
    const scheme = this.checkedScheme(key, p.schemeOid, p.issuerId);
    return assembleCrl(p.tbs, scheme, signWith(scheme, p.tbs, key));
  }

  /** A new OCSP responder key pair, kept in memory under `responderId`. */
  generateResponderKey(responderId: string, alg: KeyAlgorithm = 'ec-p256'): PublicKeyInfo {
    const { privateKey, publicKey } = generateKeyPair(alg);
    this.responders.set(responderId, privateKey);
    return importSpki(publicKey.export({ format: 'der', type: 'spki' }));
  }

  dropResponderKey(responderId: string): void {
    this.responders.delete(responderId);
  }

  /** Signs an OCSP response prepared by pki, with a responder key or a CA key (signerId). */
  async signOcsp(p: PreparedOcspResponse): Promise<Buffer> {
    if (!isPreparedOcspResponse(p)) throw new CertfleetError('invalid-state', 'the signer only signs OCSP responses prepared by pki');
    const key = this.responders.get(p.signerId) ?? (await this.key(p.signerId));
    const scheme = schemeForKey(key);
    return assembleOcspResponse(p, scheme, signWith(scheme, p.tbs, key));
  }

  private checkedScheme(key: KeyObject, schemeOid: string, caId: string) {
    const scheme = schemeForKey(key);
    if (scheme.oid !== schemeOid) throw new CertfleetError('invalid-state', `${caId} signs ${scheme.oid}, not ${schemeOid}`);
    return scheme;
  }
}
