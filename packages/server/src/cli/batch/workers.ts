/**
 * A small pool of worker threads for the CPU-bound half of a batch: key
 * generation and CSR signing (and the file writes next to them), so the main
 * thread keeps the requests to the server moving. A chunk is split evenly
 * across the workers. With `threads: 0` everything runs inline.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyAlgorithm } from '@certfleet/pki';
import { makeKeys, writeCertFiles, type CertFiles, type KeyedDevice, type KeyJob } from './device-files.js';

export type Task = { kind: 'keys'; jobs: KeyJob[]; alg: KeyAlgorithm } | { kind: 'files'; files: CertFiles[]; makeDirs: boolean };

export function runTask(t: Task): KeyedDevice[] | undefined {
  if (t.kind === 'keys') return makeKeys(t.jobs, t.alg);
  writeCertFiles(t.files, t.makeDirs);
  return undefined;
}

interface Reply {
  id: number;
  result?: KeyedDevice[];
  error?: string;
}

/*
 * Sources are TypeScript run through tsx (bin/certfleet.js); a worker starts
 * with a plain loader that registers tsx and then imports worker-main.ts.
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx).then((m) => { m.register(); return import(workerData.main); });
`;

interface Pending {
  resolve: (r: KeyedDevice[] | undefined) => void;
  reject: (e: Error) => void;
}

export class DevicePool {
  private readonly workers: (Worker | undefined)[] = [];
  /** Tasks each worker has not answered yet, by task id. */
  private readonly waiting: Map<number, Pending>[] = [];
  private next = 0;
  private closing = false;

  constructor(threads: number = availableParallelism()) {
    for (let i = 0; i < threads; i++) this.start(i);
  }

  /**
   * Starts (or restarts) worker `slot`. A worker that fails or exits has its
   * unanswered tasks rejected (their devices are reported failed and redone
   * by the next run) and is replaced, so a task is never left waiting on a
   * thread that is gone.
   */
  private start(slot: number): void {
    const w = new Worker(BOOT, {
      eval: true,
      workerData: { tsx: import.meta.resolve('tsx/esm/api'), main: new URL('./worker-main.ts', import.meta.url).href },
    });
    const waiting = new Map<number, Pending>();
    this.workers[slot] = w;
    this.waiting[slot] = waiting;
    w.on('message', (m: Reply) => {
      const p = waiting.get(m.id);
      if (!p) return;
      waiting.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    let failure: Error | undefined;
    w.on('error', (err) => (failure = err));
    w.on('exit', (code) => {
      const err = new Error(`a batch worker thread stopped (${failure?.message ?? `exit code ${code}`})`);
      for (const p of waiting.values()) p.reject(err);
      waiting.clear();
      if (this.workers[slot] === w) this.workers[slot] = undefined;
      if (!this.closing) {
        process.stderr.write(`certfleet batch: ${err.message}; starting another\n`);
        this.start(slot);
      }
    });
  }

  get size(): number {
    return this.workers.length;
  }

  private run(slot: number, task: Task): Promise<KeyedDevice[] | undefined> {
    const worker = this.workers[slot];
    if (!worker) return Promise.resolve(runTask(task));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting[slot]!.set(id, { resolve, reject });
      worker.postMessage({ id, task });
    });
  }

  /** Splits `items` into one slice per worker and runs `make(slice)` on each; results in order. */
  async spread<T>(items: readonly T[], make: (slice: T[]) => Task): Promise<KeyedDevice[]> {
    if (this.workers.length === 0) return runTask(make([...items])) ?? [];
    const per = Math.ceil(items.length / this.workers.length);
    const runs: Promise<KeyedDevice[] | undefined>[] = [];
    for (let i = 0; i < this.workers.length && i * per < items.length; i++) runs.push(this.run(i, make(items.slice(i * per, (i + 1) * per))));
    return (await Promise.all(runs)).flatMap((r) => r ?? []);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w?.terminate()));
  }
}
