/**
 * The device key. It is generated on the device and never leaves it: callers
 * get its public key, CSRs it signed, and a signature-only view for TLS — no
 * accessor hands out the private key object.
 *
 * `KeyStore` is the interface; `FileKeyStore` keeps the key as a PKCS#8 PEM
 * file (mode 0600). A PKCS#11 store (a TPM or secure element) comes later
 * behind the same interface; there the key is truly unexportable.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  buildCsrPem,
  generateKeyPair,
  importSpki,
  parseName,
  type Certificate,
  type GeneralName,
  type KeyAlgorithm,
  type NameAttribute,
} from '@certfleet/pki';
import { readIfExists, writeFileDurable } from './durable-fs.js';
import { AgentError } from './errors.js';

export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ec-p256';

export interface KeyStore {
  /** In certfleet's words: 'ec-p256', 'ed25519', 'rsa-2048', … */
  readonly algorithm: string;
  publicKey(): KeyObject;
  /** A PKCS#10 request (RFC 2986) signed by this key, PEM. `subject` as 'CN=dev-1,O=Acme' or attributes. */
  createCsr(subject: string | readonly NameAttribute[], sans?: readonly GeneralName[]): string;
  /**
   * The key as PKCS#8 PEM, for node:tls `key:` (which takes nothing else).
   * For a file key this adds no exposure: the file is readable by this
   * process anyway. A hardware store will instead offer a TLS engine/provider
   * and throw here.
   */
  tlsKeyPem(): string;
  /** Whether `cert` certifies this key (same public key). */
  matches(cert: Certificate): boolean;
}

/** Whether `privateKey` is the key certified by `cert`. */
export function keyMatchesCertificate(privateKey: KeyObject, cert: Certificate): boolean {
  return createPublicKey(privateKey).equals(cert.publicKey);
}

/** Parses a PKCS#8 (or SEC1/PKCS#1) PEM private key; refuses weak or unknown algorithms. */
export function parsePrivateKeyPem(pem: string, where: string): { key: KeyObject; algorithm: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new AgentError('slot-corrupt', `${where}: not a PEM private key`, { cause: err });
  }
  // importSpki is the single place that decides which keys certfleet accepts.
  const algorithm = importSpki(createPublicKey(key).export({ format: 'der', type: 'spki' })).algorithm;
  return { key, algorithm };
}

export class FileKeyStore implements KeyStore {
  private constructor(
    readonly path: string,
    private readonly key: KeyObject,
    readonly algorithm: string,
  ) {}

  /** Generates a key and writes it at `path`; fails with 'key-exists' rather than replace a key. */
  static async create(path: string, opts: { algorithm?: KeyAlgorithm } = {}): Promise<FileKeyStore> {
    const algorithm = opts.algorithm ?? DEFAULT_KEY_ALGORITHM;
    const { privateKey } = generateKeyPair(algorithm);
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    await writeFileDurable(path, pem, { mode: 0o600, overwrite: false, crashLabel: 'key.pem' });
    return new FileKeyStore(path, privateKey, algorithm);
  }

  /** Loads the key at `path`; 'key-missing' if there is none. */
  static async load(path: string): Promise<FileKeyStore> {
    const pem = await readIfExists(path);
    if (pem === undefined) throw new AgentError('key-missing', `no device key at ${path}`);
    // A key others can read may already be copied: refuse it instead of using it quietly.
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw new AgentError('key-exposed', `${path} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it or make a new key`);
    }
    const { key, algorithm } = parsePrivateKeyPem(pem, path);
    return new FileKeyStore(path, key, algorithm);
  }

  /** Loads the key at `path`, generating it first if there is none. */
  static async loadOrCreate(path: string, opts: { algorithm?: KeyAlgorithm } = {}): Promise<FileKeyStore> {
    try {
      return await FileKeyStore.load(path);
    } catch (err) {
      if (!(err instanceof AgentError) || err.code !== 'key-missing') throw err;
    }
    try {
      return await FileKeyStore.create(path, opts);
    } catch (err) {
      // Another process created it between our read and our link(2): use theirs.
      if (err instanceof AgentError && err.code === 'key-exists') return FileKeyStore.load(path);
      throw err;
    }
  }

  publicKey(): KeyObject {
    return createPublicKey(this.key);
  }

  createCsr(subject: string | readonly NameAttribute[], sans: readonly GeneralName[] = []): string {
    const attrs = typeof subject === 'string' ? parseName(subject) : subject;
    return buildCsrPem({ subject: attrs, publicKey: this.publicKey(), privateKey: this.key, sans });
  }

  tlsKeyPem(): string {
    return this.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  }

  matches(cert: Certificate): boolean {
    return keyMatchesCertificate(this.key, cert);
  }
}
