/**
 * Sealing CA private keys at rest: AES-256-GCM with the CA id as additional
 * data (a sealed key cannot be moved to another CA), under a key-encryption
 * key that is either derived with scrypt from CERTFLEET_PASSPHRASE or read
 * from a generated 32-byte key file (mode 0600) in the data dir.
 *
 * Sealed blob: "CFK1" | mode (1: passphrase, 2: key file) | salt (16) | iv (12) | tag (16) | ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { CertfleetError } from '../errors.js';

const MAGIC = Buffer.from('CFK1');
const MODE_PASSPHRASE = 1;
const MODE_KEYFILE = 2;
// scrypt cost: N = 2^15, r = 8 (about 32 MiB and ~100 ms), done once per CA key load.
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export type KekSource = { readonly kind: 'passphrase'; readonly passphrase: string } | { readonly kind: 'keyfile'; readonly key: Buffer };

export class KeySealer {
  private readonly derived = new Map<string, Buffer>();

  constructor(private readonly source: KekSource) {}

  /** Where the key-encryption key comes from, for the operator. */
  describe(): string {
    return this.source.kind === 'passphrase' ? 'scrypt(CERTFLEET_PASSPHRASE)' : 'key file';
  }

  private kek(mode: number, salt: Buffer): Buffer {
    if (mode === MODE_KEYFILE) {
      if (this.source.kind !== 'keyfile') throw new CertfleetError('unavailable', 'this CA key was sealed with the data dir key file, but CERTFLEET_PASSPHRASE is set');
      return this.source.key;
    }
    if (this.source.kind !== 'passphrase') throw new CertfleetError('unavailable', 'this CA key was sealed under a passphrase: set CERTFLEET_PASSPHRASE');
    const cacheKey = salt.toString('hex');
    let k = this.derived.get(cacheKey);
    if (!k) {
      k = scryptSync(this.source.passphrase.normalize('NFKC'), salt, 32, SCRYPT);
      this.derived.set(cacheKey, k);
    }
    return k;
  }

  seal(caId: string, plaintext: Buffer): Buffer {
    const mode = this.source.kind === 'passphrase' ? MODE_PASSPHRASE : MODE_KEYFILE;
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.kek(mode, salt), iv);
    cipher.setAAD(Buffer.from(caId, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([MAGIC, Buffer.from([mode]), salt, iv, cipher.getAuthTag(), ct]);
  }

  unseal(caId: string, sealed: Buffer): Buffer {
    if (sealed.length < 4 + 1 + 16 + 12 + 16 + 1 || !sealed.subarray(0, 4).equals(MAGIC)) {
      throw new CertfleetError('internal', `sealed key of CA ${caId} is not in a known format`);
    }
    const mode = sealed[4]!;
    const salt = sealed.subarray(5, 21);
    const iv = sealed.subarray(21, 33);
    const tag = sealed.subarray(33, 49);
    const decipher = createDecipheriv('aes-256-gcm', this.kek(mode, salt), iv);
    decipher.setAAD(Buffer.from(caId, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(49)), decipher.final()]);
    } catch (err) {
      throw new CertfleetError('unavailable', `cannot unseal the key of CA ${caId}: wrong passphrase or key file`, { cause: err });
    }
  }
}

/**
 * The sealer for a data dir: the passphrase when one is given, else the
 * key file `master.key` (created with mode 0600 when `create` is set).
 */
export function sealerFor(keyFile: string, passphrase: string | undefined, create: boolean): KeySealer {
  if (passphrase) return new KeySealer({ kind: 'passphrase', passphrase });
  if (!existsSync(keyFile)) {
    if (!create) throw new CertfleetError('unavailable', `no key file at ${keyFile} and no CERTFLEET_PASSPHRASE set`);
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600, flag: 'wx' });
    chmodSync(keyFile, 0o600);
  }
  const key = readFileSync(keyFile);
  if (key.length !== 32) throw new CertfleetError('unavailable', `key file ${keyFile} must hold 32 bytes`);
  return new KeySealer({ kind: 'keyfile', key });
}
