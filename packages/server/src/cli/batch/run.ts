/**
 * certfleet batch create: N device identities made on the factory machine
 * (the key never reaches the server), or N CSRs from a factory signed, each
 * registered with its thing, through POST /api/v1/batches/issue in chunks.
 *
 * Per chunk, in this order, so a kill at any point loses nothing and a rerun
 * duplicates nothing:
 *  1. keys generated (worker threads) and written 0600, then made durable
 *     with one flush: no CSR leaves for a key we could lose;
 *  2. the chunk's CSRs sent in one request; the server answers only what it
 *     has stored, and a thing already holding a certificate for the same
 *     key gets that certificate back (a chunk answered once, answer lost);
 *  3. cert.pem written, chain.pem and ca.pem linked to one copy per chain
 *     (.chain-HASH.pem, .ca-HASH.pem), all made durable with one flush;
 *  4. the chunk's journal lines appended with one fsync (journal.ts).
 * While one chunk is at the server the next one's keys are being made.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import type { KeyAlgorithm } from '@certfleet/pki';
import { CertfleetError } from '../../errors.js';
import { api, ApiError, type ClientConfig } from '../client.js';
import type { KeyedDevice } from './device-files.js';
import { syncDirectory, writeAtomic } from './files.js';
import { Journal, readJournal, writeManifest, type JournalEntry } from './journal.js';
import { DevicePool } from './workers.js';

export interface BatchOptions {
  out: string;
  /** Generate keys for COUNT devices named PREFIX-INDEX… */
  count?: number;
  start?: number;
  prefix?: string;
  /** …or sign every *.csr / *.pem in this directory, thing named after the file. */
  csrDir?: string;
  /** Batch requests in flight at once. */
  concurrency?: number;
  /** Devices per batch request (at most 1,000, the server's limit). */
  chunkSize?: number;
  /** Worker threads for keys and files; 0 runs them on the main thread. Default: one per core. */
  threads?: number;
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

/** What POST /api/v1/batches/issue answers (routes/batches.ts). */
interface BatchAnswer {
  items: {
    thing: string;
    certificateId?: string;
    serial?: string;
    certificatePem?: string;
    fingerprint?: string;
    reused?: boolean;
    chainPem?: string;
    error?: { code: string; detail: string };
  }[];
  chainPem: string;
  caPem: string;
}

export const DEFAULT_CHUNK = 500;
const MAX_CHUNK = 1000;
const ATTEMPTS = 4;
const LINKS_PER_COPY = 10_000;

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

/** The last PEM block of a chain: the root. */
const rootOf = (chainPem: string): string => {
  const at = chainPem.lastIndexOf('-----BEGIN CERTIFICATE-----');
  return at < 0 ? chainPem : chainPem.slice(at);
};

/**
 * One batch request, retried when the server could not be reached or failed
 * (5xx): safe, because a chunk sent twice gets its certificates back, not new ones.
 */
async function issueChunk(cfg: ClientConfig, body: unknown): Promise<BatchAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api<BatchAnswer>(cfg, 'POST', '/api/v1/batches/issue', body);
    } catch (err) {
      const transient = (err instanceof ApiError && err.problem.status >= 500) || (err instanceof CertfleetError && err.code === 'unavailable');
      if (!transient || attempt >= ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

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
  const chunkSize = Math.max(1, Math.min(MAX_CHUNK, o.chunkSize ?? DEFAULT_CHUNK));

  const began = Date.now();
  const done = readJournal(out);
  const todo = jobs.filter((j) => !done.has(j.thing));
  const summary = { skipped: jobs.length - todo.length, issued: 0, reused: 0, failed: [] as BatchSummary['failed'] };
  let completed = summary.skipped;
  o.onProgress?.(completed, jobs.length);

  const chunks: Job[][] = [];
  for (let i = 0; i < todo.length; i += chunkSize) chunks.push(todo.slice(i, i + chunkSize));
  const pool = new DevicePool(chunks.length === 0 ? 0 : (o.threads ?? availableParallelism()));
  const journal = new Journal(out);

  /**
   * The batch's copies of a chain and of its root, which the devices'
   * chain.pem and ca.pem link to; a new copy every LINKS_PER_COPY devices
   * (ext4 allows 65,000 links to one file).
   */
  const chainFiles = new Map<string, { chainFile: string; caFile: string; links: number }>();
  let copies = 0;
  const sharedChain = (chainPem: string) => {
    let f = chainFiles.get(chainPem);
    if (!f || f.links >= LINKS_PER_COPY) {
      const tag = `${createHash('sha256').update(chainPem).digest('hex').slice(0, 16)}-${process.pid}-${copies++}`;
      f = { chainFile: join(out, `.chain-${tag}.pem`), caFile: join(out, `.ca-${tag}.pem`), links: 0 };
      writeAtomic(f.chainFile, chainPem);
      writeAtomic(f.caFile, rootOf(chainPem));
      chainFiles.set(chainPem, f);
    }
    f.links++;
    return f;
  };

  /** Steps 1: the chunk's CSRs, with keys durable first when they are made here. */
  const prepare = async (chunk: Job[]): Promise<KeyedDevice[]> => {
    if (o.csrDir) return chunk.map((j) => ({ thing: j.thing, csr: readFileSync(j.csrFile!, 'utf8'), keyPath: '', fresh: false }));
    const alg = o.keyAlgorithm ?? 'ec-p256';
    const keyed = await pool.spread(chunk.map((j) => ({ thing: j.thing, dir: join(out, j.thing) })), (jobs) => ({ kind: 'keys', jobs, alg }));
    const fresh = keyed.filter((k) => k.fresh).map((k) => k.keyPath);
    if (fresh.length > 0) await syncDirectory(out, fresh);
    return keyed;
  };

  /** Steps 2 to 4. */
  const send = async (devices: KeyedDevice[]): Promise<void> => {
    const fail = (thing: string, error: string) => summary.failed.push({ thing, error });
    try {
      const answer = await issueChunk(cfg, {
        items: devices.map((d) => ({ thing: d.thing, csr: d.csr })),
        ...(o.profile ? { profile: o.profile } : {}),
        ...(o.validityDays ? { validityDays: o.validityDays } : {}),
      });
      const byThing = new Map(devices.map((d) => [d.thing, d]));
      const entries: JournalEntry[] = [];
      const files = [];
      for (const item of answer.items) {
        const device = byThing.get(item.thing);
        if (!device) continue;
        if (item.error || !item.certificateId || !item.serial || !item.certificatePem) {
          fail(item.thing, item.error ? `${item.error.detail} (${item.error.code})` : 'the server answered without a certificate');
          continue;
        }
        if (item.reused) summary.reused++;
        else summary.issued++;
        const dir = join(out, item.thing);
        const shared = sharedChain(item.chainPem ?? answer.chainPem);
        files.push({ dir, certificatePem: item.certificatePem, chainFile: shared.chainFile, caFile: shared.caFile });
        entries.push({
          thing: item.thing,
          certificateId: item.certificateId,
          serial: item.serial,
          fingerprintSha256: item.fingerprint ?? item.certificateId,
          certPath: join(dir, 'cert.pem'),
          keyPath: o.csrDir ? null : device.keyPath,
          chainPath: join(dir, 'chain.pem'),
          caPath: join(dir, 'ca.pem'),
        });
      }
      const answered = new Set(answer.items.map((i) => i.thing));
      for (const d of devices) if (!answered.has(d.thing)) fail(d.thing, 'the server did not answer for this device');
      await pool.spread(files, (slice) => ({ kind: 'files', files: slice, makeDirs: !!o.csrDir }));
      await syncDirectory(out, entries.flatMap((e) => [e.certPath, e.chainPath, e.caPath]));
      journal.appendMany(entries);
    } catch (err) {
      for (const d of devices) fail(d.thing, (err as Error).message);
    }
    completed += devices.length;
    o.onProgress?.(completed, jobs.length);
  };

  const inFlight = new Set<Promise<void>>();
  const depth = Math.max(1, o.concurrency ?? 2);
  try {
    for (const chunk of chunks) {
      let devices: KeyedDevice[];
      try {
        devices = await prepare(chunk);
      } catch (err) {
        for (const j of chunk) summary.failed.push({ thing: j.thing, error: (err as Error).message });
        completed += chunk.length;
        o.onProgress?.(completed, jobs.length);
        continue;
      }
      const p = send(devices).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= depth) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    journal.close();
    await pool.close();
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
