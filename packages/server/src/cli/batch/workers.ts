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

export class DevicePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: KeyedDevice[] | undefined) => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor(threads: number = availableParallelism()) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(BOOT, {
        eval: true,
        workerData: { tsx: import.meta.resolve('tsx/esm/api'), main: new URL('./worker-main.ts', import.meta.url).href },
      });
      w.on('message', (m: Reply) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result);
      });
      w.on('error', (err) => {
        for (const p of this.waiting.values()) p.reject(err);
        this.waiting.clear();
      });
      this.workers.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  private run(worker: Worker, task: Task): Promise<KeyedDevice[] | undefined> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, task });
    });
  }

  /** Splits `items` into one slice per worker and runs `make(slice)` on each; results in order. */
  async spread<T>(items: readonly T[], make: (slice: T[]) => Task): Promise<KeyedDevice[]> {
    if (this.workers.length === 0) return runTask(make([...items])) ?? [];
    const per = Math.ceil(items.length / this.workers.length);
    const runs: Promise<KeyedDevice[] | undefined>[] = [];
    for (let i = 0; i < this.workers.length && i * per < items.length; i++) runs.push(this.run(this.workers[i]!, make(items.slice(i * per, (i + 1) * per))));
    return (await Promise.all(runs)).flatMap((r) => r ?? []);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
