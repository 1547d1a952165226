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
  task: Task;
  resolve: (r: KeyedDevice[] | undefined) => void;
  reject: (e: Error) => void;
}

/**
 * A task unanswered for this long has its worker replaced and is run on the
 * main thread instead. A slice of a chunk takes about a second even on a
 * loaded machine; a worker has been seen to stop answering in the middle of
 * one (threads idle, no error, no exit), and a batch must never hang on it.
 */
const TASK_TIMEOUT_MS = 60_000;
const EXIT_GRACE_MS = 5_000;

export class DevicePool {
  private readonly workers: (Worker | undefined)[] = [];
  /** Tasks each worker has not answered yet, by task id. */
  private readonly waiting: Map<number, Pending>[] = [];
  private readonly retire: ((why: string) => Promise<void>)[] = [];
  private next = 0;
  private closing = false;

  constructor(
    threads: number = availableParallelism(),
    private readonly taskTimeoutMs = TASK_TIMEOUT_MS,
  ) {
    for (let i = 0; i < threads; i++) this.start(i);
  }

  /**
   * Starts (or restarts) worker `slot`. A worker that fails, exits or stops
   * answering is replaced, and its unanswered tasks run on the main thread:
   * tasks are idempotent (a key on disk is used again, links are replaced),
   * so a task the worker half did is simply done again.
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
    let retired = false;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    const retire = async (why: string) => {
      if (retired) return;
      retired = true;
      w.removeAllListeners('message');
      // The task runs again here only once the thread has stopped, so the two never write one
      // device's key at once; a thread stuck in a native wait (writing nothing) may never stop.
      void w.terminate();
      await Promise.race([exited, new Promise((r) => setTimeout(r, EXIT_GRACE_MS).unref())]);
      const orphans = [...waiting.values()];
      waiting.clear();
      if (this.workers[slot] === w) this.workers[slot] = undefined;
      if (!this.closing) {
        process.stderr.write(`certfleet batch: a worker thread stopped (${why}); its work runs here, another starts\n`);
        this.start(slot);
      }
      for (const p of orphans) {
        try {
          p.resolve(runTask(p.task));
        } catch (err) {
          p.reject(err as Error);
        }
      }
    };
    this.retire[slot] = retire;
    w.on('error', (err) => (failure = err));
    w.on('exit', (code) => void retire(failure?.message ?? `exit code ${code}`));
  }

  get size(): number {
    return this.workers.length;
  }

  private run(slot: number, task: Task): Promise<KeyedDevice[] | undefined> {
    const worker = this.workers[slot];
    if (!worker) return Promise.resolve(runTask(task));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const retire = this.retire[slot]!;
      const timer = setTimeout(() => void retire(`no answer in ${this.taskTimeoutMs / 1000} s`), this.taskTimeoutMs);
      const done = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => {
        clearTimeout(timer);
        f(...a);
      };
      this.waiting[slot]!.set(id, { task, resolve: done(resolve), reject: done(reject) });
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
