/**
 * certfleet batch create: N device identities made on the factory machine
 * (the key never reaches the server), or N CSRs from a factory signed, each
 * registered with its thing. Resumable: see journal.ts and `device` below.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { buildCsrPem, decodePem, generateKeyPair, OID, parseCsr, type KeyAlgorithm } from '@certfleet/pki';
import { CertfleetError } from '../../errors.js';
import { api, ApiError, type ClientConfig } from '../client.js';
import { writeAtomic } from './files.js';
import { Journal, readJournal, writeManifest, type JournalEntry } from './journal.js';

export interface BatchOptions {
  out: string;
  /** Generate keys for COUNT devices named PREFIX-INDEX… */
  count?: number;
  start?: number;
  prefix?: string;
  /** …or sign every *.csr / *.pem in this directory, thing named after the file. */
  csrDir?: string;
  concurrency?: number;
  keyAlgorithm?: KeyAlgorithm;
  profile?: string;
  validityDays?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface BatchSummary {
  total: number;
  /** Already in the journal when this run started. */
  skipped: number;
  issued: number;
  /** Certificates found on the server for the device's key after a kill, not signed again. */
  reused: number;
  failed: { thing: string; error: string }[];
  seconds: number;
  devicesPerSecond: number;
  manifest: { json: string; csv: string; devices: number };
}

interface Job {
  thing: string;
  csrFile?: string;
}

interface Issued {
  id: string;
  serial: string;
  certificatePem: string;
  chainPem: string;
  caPem: string;
}

interface CertItem {
  id: string;
  serial: string;
  status: string;
  certificatePem?: string;
}

interface CaView {
  id: string;
  parentId: string | null;
  certificatePem: string;
}

/** Thing names PREFIX-0001…, zero-padded to the width of the last index (at least 4). */
export function thingNames(prefix: string, start: number, count: number): string[] {
  const width = Math.max(4, String(start + count - 1).length);
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(start + i).padStart(width, '0')}`);
}

/** The CSR files of DIR, sorted, each with the thing named after its base name. */
export function csrJobs(dir: string): Job[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.csr') || f.endsWith('.pem'))
    .sort()
    .map((f) => ({ thing: basename(f, extname(f)), csrFile: join(dir, f) }));
}

const spkiOf = (k: KeyObject): Buffer => k.export({ format: 'der', type: 'spki' });

export async function runBatch(cfg: ClientConfig, o: BatchOptions): Promise<BatchSummary> {
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  let jobs: Job[];
  if (o.csrDir) jobs = csrJobs(o.csrDir);
  else if (o.count) jobs = thingNames(o.prefix ?? 'device', o.start ?? 1, o.count).map((thing) => ({ thing }));
  else throw new CertfleetError('bad-request', 'batch create wants --count N or --csr-dir DIR');
  const seen = new Set<string>();
  for (const j of jobs) {
    if (seen.has(j.thing)) throw new CertfleetError('bad-request', `two CSR files name the thing ${j.thing}`);
    seen.add(j.thing);
  }

  const began = Date.now();
  const done = readJournal(out);
  const todo = jobs.filter((j) => !done.has(j.thing));
  const summary = { skipped: jobs.length - todo.length, issued: 0, reused: 0, failed: [] as BatchSummary['failed'] };
  let completed = summary.skipped;
  o.onProgress?.(completed, jobs.length);

  const journal = new Journal(out);
  const chains = new Map<string, Promise<{ chainPem: string; caPem: string }>>();

  /** Chain (issuing CA first, root last) and root of a CA, for a certificate found again after a kill. */
  const chainOf = (issuerId: string) => {
    let p = chains.get(issuerId);
    if (!p) {
      p = (async () => {
        const pems: string[] = [];
        let id: string | null = issuerId;
        for (let hops = 0; id && hops < 10; hops++) {
          const ca: CaView = await api<CaView>(cfg, 'GET', `/api/v1/cas/${encodeURIComponent(id)}`);
          pems.push(ca.certificatePem.trim());
          id = ca.parentId;
        }
        return { chainPem: `${pems.join('\n')}\n`, caPem: `${pems[pems.length - 1]}\n` };
      })();
      chains.set(issuerId, p);
    }
    return p;
  };

  /** A certificate the server already holds for this thing and this public key (signed before a kill). */
  const existing = async (thing: string, spki: Buffer): Promise<Issued | undefined> => {
    const q = new URLSearchParams({ thing, limit: '1000' });
    const page = await api<{ items: CertItem[] }>(cfg, 'GET', `/api/v1/certificates?${q}`);
    for (const c of page.items) {
      if (c.status === 'revoked') continue;
      const detail = await api<CertItem & { issuerId: string; certificatePem: string }>(cfg, 'GET', `/api/v1/certificates/${encodeURIComponent(c.id)}`);
      if (!spkiOf(new X509Certificate(detail.certificatePem).publicKey).equals(spki)) continue;
      return { id: detail.id, serial: detail.serial, certificatePem: detail.certificatePem, ...(await chainOf(detail.issuerId)) };
    }
    return undefined;
  };

  const device = async (job: Job): Promise<void> => {
    const dir = join(out, job.thing);
    let csr: string;
    let spki: Buffer;
    let keyPath: string | null = null;
    if (job.csrFile) {
      csr = readFileSync(job.csrFile, 'utf8');
      spki = parseCsr(decodePem(csr, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')).spki;
    } else {
      keyPath = join(dir, 'key.pem');
      let privateKey: KeyObject;
      if (existsSync(keyPath)) privateKey = createPrivateKey(readFileSync(keyPath, 'utf8'));
      else {
        privateKey = generateKeyPair(o.keyAlgorithm ?? 'ec-p256').privateKey;
        // On disk (0600, atomically) before the CSR leaves: a certificate is never issued for a key we could lose.
        writeAtomic(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
      }
      const publicKey = createPublicKey(privateKey);
      spki = spkiOf(publicKey);
      csr = buildCsrPem({ subject: [{ type: OID.commonName, value: job.thing }], publicKey, privateKey });
    }

    let fresh = true;
    try {
      await api(cfg, 'POST', '/api/v1/things', { name: job.thing });
    } catch (err) {
      if (!(err instanceof ApiError && err.problem.status === 409)) throw err;
      fresh = false;
    }
    // A thing made by an earlier, killed run may already hold the certificate for this key.
    let issued = fresh ? undefined : await existing(job.thing, spki);
    if (issued) summary.reused++;
    else {
      issued = await api<Issued>(cfg, 'POST', '/api/v1/certificates', {
        csr,
        thing: job.thing,
        ...(o.profile ? { profile: o.profile } : {}),
        ...(o.validityDays ? { validityDays: o.validityDays } : {}),
      });
      summary.issued++;
    }
    const entry: JournalEntry = {
      thing: job.thing,
      certificateId: issued.id,
      serial: issued.serial,
      fingerprintSha256: issued.id,
      certPath: join(dir, 'cert.pem'),
      keyPath,
      chainPath: join(dir, 'chain.pem'),
      caPath: join(dir, 'ca.pem'),
    };
    writeAtomic(entry.certPath, issued.certificatePem);
    writeAtomic(entry.chainPath, issued.chainPem);
    writeAtomic(entry.caPath, issued.caPem);
    journal.append(entry);
  };

  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const job = todo[next++]!;
      try {
        await device(job);
      } catch (err) {
        summary.failed.push({ thing: job.thing, error: (err as Error).message });
      }
      completed++;
      o.onProgress?.(completed, jobs.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 16, todo.length)) }, worker));
  } finally {
    journal.close();
  }

  const entries = writeManifest(out);
  const seconds = (Date.now() - began) / 1000;
  const worked = summary.issued + summary.reused;
  return {
    total: jobs.length,
    ...summary,
    seconds,
    devicesPerSecond: seconds > 0 ? Math.round((worked / seconds) * 10) / 10 : worked,
    manifest: { json: join(out, 'manifest.json'), csv: join(out, 'manifest.csv'), devices: entries.length },
  };
}
