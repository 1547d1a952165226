/**
 * A device key held in memory only: the simulator's thousands of virtual
 * devices need no files (a real device uses FileKeyStore or a secure element).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { buildCsrPem, generateKeyPair, parseName, type Certificate, type GeneralName, type KeyAlgorithm, type NameAttribute } from '@certfleet/pki';
import { DEFAULT_KEY_ALGORITHM, keyMatchesCertificate, type KeyStore } from '../keystore.js';

export class MemoryKeyStore implements KeyStore {
  private constructor(
    private readonly key: KeyObject,
    readonly algorithm: string,
  ) {}

  static generate(algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM): MemoryKeyStore {
    return new MemoryKeyStore(generateKeyPair(algorithm).privateKey, algorithm);
  }

  publicKey(): KeyObject {
    return createPublicKey(this.key);
  }

  createCsr(subject: string | readonly NameAttribute[], sans: readonly GeneralName[] = []): string {
    return buildCsrPem({ subject: typeof subject === 'string' ? parseName(subject) : subject, publicKey: this.publicKey(), privateKey: this.key, sans });
  }

  tlsKeyPem(): string {
    return this.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  }

  matches(cert: Certificate): boolean {
    return keyMatchesCertificate(this.key, cert);
  }
}
