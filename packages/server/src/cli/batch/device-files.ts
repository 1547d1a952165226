/**
 * What the batch does to the disk for each device, in bulk: make (or load
 * again) its key and CSR, and write its certificate files. Runs in the
 * worker threads of workers.ts, or inline when there are none. Nothing here
 * fsyncs: the caller makes a whole chunk durable at once (files.ts,
 * syncDirectory), which costs one flush instead of one per file.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCsrPem, generateKeyPair, OID, type KeyAlgorithm } from '@certfleet/pki';

export interface KeyJob {
  readonly thing: string;
  readonly dir: string;
}

export interface KeyedDevice {
  readonly thing: string;
  readonly csr: string;
  readonly keyPath: string;
  /** The key was made now (not found from an earlier, interrupted run). */
  readonly fresh: boolean;
}

export interface CertFiles {
  readonly dir: string;
  readonly certificatePem: string;
  /**
   * Files holding the chain and the root, shared by the devices of a batch:
   * each device's chain.pem and ca.pem are hard links to them (one directory
   * entry each instead of a new file with its own data block).
   */
  readonly chainFile: string;
  readonly caFile: string;
}
/** An existing key file, or undefined when it is missing or torn (a kill mid-write, before its CSR could be sent). */
function existingKey(path: string): KeyObject | undefined {
  // Checked first: on a fresh run every lookup misses, and a thrown ENOENT costs more than a stat.
  if (!existsSync(path)) return undefined;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return createPrivateKey(pem);
  } catch {
    return undefined;
  }
}

/** Keys (0600, created with that mode, never readable by others) and CSRs with the thing as CN. */
export function makeKeys(jobs: readonly KeyJob[], alg: KeyAlgorithm): KeyedDevice[] {
  return jobs.map(({ thing, dir }) => {
    const keyPath = join(dir, 'key.pem');
    let privateKey = existingKey(keyPath);
    let publicKey: KeyObject;
    const fresh = privateKey === undefined;
    if (privateKey === undefined) {
      ({ privateKey, publicKey } = generateKeyPair(alg));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    } else publicKey = createPublicKey(privateKey);
    return { thing, keyPath, fresh, csr: buildCsrPem({ subject: [{ type: OID.commonName, value: thing }], publicKey, privateKey }) };
  });
}

/** cert.pem, chain.pem and ca.pem of each device (whose directory exists: its key is in it, or makeDirs). */
export function writeCertFiles(files: readonly CertFiles[], makeDirs: boolean): void {
  for (const f of files) {
    if (makeDirs) mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(f.dir, 'cert.pem'), f.certificatePem);
    linkOver(f.chainFile, join(f.dir, 'chain.pem'));
    linkOver(f.caFile, join(f.dir, 'ca.pem'));
  }
}

/** link(2), replacing what an interrupted run may have left at `to`. */
function linkOver(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    unlinkSync(to);
    linkSync(from, to);
  }
}
