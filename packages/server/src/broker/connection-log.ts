/**
 * Connection records, written to the store in the background: a device's
 * CONNECT never waits for the database, and writes keep their order (a
 * connection is recorded open before it is recorded closed). close() of the
 * broker waits for every queued write, so a clean shutdown loses none; a
 * crash leaves rows open, which the same node closes as 'node-restart' when
 * it starts again (recover()).
 *
 * Writes are grouped: those queued within BATCH_WINDOW_MS go to the store in
 * one transaction, one commit. With SQLite at synchronous=FULL each commit
 * waits for an fsync on the event loop's thread (better-sqlite3 is
 * synchronous): a connect and its disconnect cost ~0.6 ms of CPU and ~5.6 ms
 * of wall time when written one by one (bench/mqtt-connect.ts, in-process
 * steps), time in which no other device was served. The store therefore
 * commits these batches without waiting for fsync (store/sqlite.ts
 * unsyncedTransaction, WAL with synchronous=NORMAL): they survive a kill of
 * the process once committed, and an OS crash or power loss may lose the
 * last ones. Connection records are acknowledged to no one, so a kill may
 * lose the writes of the last window (at most BATCH_WINDOW_MS plus one
 * transaction) and a crash of the machine those since the last sync; a
 * connect lost so is simply absent, a disconnect lost so is closed as
 * 'node-restart' by recover().
 */
import type { ConnectionStore, ConnectionWrite } from '../store/index.js';
import { CertfleetError } from '../errors.js';
import type { BrokerLogger } from './engine.js';
import type { LiveConnection } from './live-connections.js';

/** The store's batch write when it has one; a store without it gets the writes one by one. */
export type ConnectionRecordStore = Pick<ConnectionStore, 'recordConnect' | 'recordDisconnect' | 'closeOpenConnections'> &
  Partial<Pick<ConnectionStore, 'recordConnectionWrites'>>;

/** Writes queued beyond this are dropped (and logged): a database that is down must not grow memory without bound. */
const MAX_QUEUED = 100_000;
/** Waits before each retry of a write the database refused as unavailable. */
const RETRY_MS = [100, 500, 2000] as const;
/**
 * How long the first write of a batch waits for others to join it. Each
 * SQLite commit at synchronous=FULL blocked the event loop ~4 ms (fsync,
 * under load): at 10 ms, SQL was still 19 % of the broker's busy time at
 * ~125 connects/s. Without the fsync a commit is cheap, but one commit per
 * batch is still fewer statements and lock takings than one per write.
 */
const BATCH_WINDOW_MS = 20;
/** Writes per transaction at most, so one batch never holds the write lock for long. */
const MAX_BATCH = 500;

export class ConnectionLog {
  #tail: Promise<void> = Promise.resolve();
  #pending: ConnectionWrite[] = [];
  #timer: NodeJS.Timeout | undefined;
  #queued = 0;
  #dropped = 0;

  constructor(
    private readonly store: ConnectionRecordStore | undefined,
    readonly nodeId: string,
    private readonly log: BrokerLogger,
  ) {}

  /** Closes the rows this node left open when it last stopped without closing them. */
  async recover(at: Date): Promise<number> {
    if (!this.store) return 0;
    const closed = await this.store.closeOpenConnections(this.nodeId, at, 'node-restart');
    if (closed > 0) this.log.warn({ nodeId: this.nodeId, closed }, 'closed connection records left open by an earlier run of this node');
    return closed;
  }

  connected(c: LiveConnection, at: Date): void {
    const connection = {
      id: c.id,
      certificateId: c.identity.certificateId,
      clientId: c.clientId ?? '',
      remoteAddress: c.remote,
      connectedAt: at,
      nodeId: this.nodeId,
    };
    this.enqueue({ kind: 'connect', connection });
  }

  disconnected(c: LiveConnection, at: Date, reason: string): void {
    this.enqueue({ kind: 'disconnect', id: c.id, at, reason });
  }

  /** Resolves once every write queued so far is done (or given up). */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#tail = this.#tail.then(() => this.writeBatch());
      }
      const tail = this.#tail;
      await tail;
      if (tail === this.#tail && this.#timer === undefined) return;
    }
  }

  private enqueue(write: ConnectionWrite): void {
    if (!this.store) return;
    if (this.#queued >= MAX_QUEUED) {
      if (this.#dropped++ % 1000 === 0) this.log.error({ what: describe(write), dropped: this.#dropped }, 'connection record dropped: the write queue is full');
      return;
    }
    this.#queued++;
    this.#pending.push(write);
    this.schedule(BATCH_WINDOW_MS);
  }

  /** Batches run one after the other, so the order of writes holds across them too. */
  private schedule(delayMs: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tail = this.#tail.then(() => this.writeBatch());
    }, delayMs);
  }

  private async writeBatch(): Promise<void> {
    const store = this.store;
    const batch = this.#pending.splice(0, MAX_BATCH);
    if (this.#pending.length > 0) this.schedule(0);
    if (!store || batch.length === 0) return;
    try {
      if (store.recordConnectionWrites) {
        const failures = await this.attempt(`${batch.length} connection records`, () => store.recordConnectionWrites!(batch));
        for (const f of failures ?? []) this.notWritten(batch[f.index]!, f.error);
      } else {
        for (const w of batch) {
          await this.attempt(describe(w), () => (w.kind === 'connect' ? store.recordConnect(w.connection) : store.recordDisconnect(w.id, w.at, w.reason)));
        }
      }
    } finally {
      this.#queued -= batch.length;
    }
  }

  private notWritten(w: ConnectionWrite, err: unknown): void {
    this.log.error({ what: describe(w), err: err instanceof Error ? err.message : String(err) }, 'connection record not written');
  }

  /** The write's result, or undefined once given up (logged). */
  private async attempt<T>(what: string, write: () => Promise<T>): Promise<T | undefined> {
    for (let i = 0; ; i++) {
      try {
        return await write();
      } catch (err) {
        const retry = err instanceof CertfleetError && err.code === 'unavailable' && i < RETRY_MS.length;
        if (!retry) {
          this.log.error({ what, err: err instanceof Error ? err.message : String(err) }, 'connection record not written');
          return undefined;
        }
        await new Promise((r) => setTimeout(r, RETRY_MS[i]));
      }
    }
  }
}

const describe = (w: ConnectionWrite): string => (w.kind === 'connect' ? `connect ${w.connection.id}` : `disconnect ${w.id}`);
