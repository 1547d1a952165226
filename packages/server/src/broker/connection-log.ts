/**
 * Connection records, written to the store in the background: a device's
 * CONNECT never waits for the database, and writes keep their order (a
 * connection is recorded open before it is recorded closed). close() of the
 * broker waits for every queued write, so a clean shutdown loses none; a
 * crash leaves rows open, which the same node closes as 'node-restart' when
 * it starts again (recover()).
 */
import type { ConnectionStore } from '../store/index.js';
import { CertfleetError } from '../errors.js';
import type { BrokerLogger } from './engine.js';
import type { LiveConnection } from './live-connections.js';

export type ConnectionRecordStore = Pick<ConnectionStore, 'recordConnect' | 'recordDisconnect' | 'closeOpenConnections'>;

/** Writes queued beyond this are dropped (and logged): a database that is down must not grow memory without bound. */
const MAX_QUEUED = 100_000;
/** Waits before each retry of a write the database refused as unavailable. */
const RETRY_MS = [100, 500, 2000] as const;

export class ConnectionLog {
  #tail: Promise<void> = Promise.resolve();
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
    const record = {
      id: c.id,
      certificateId: c.identity.certificateId,
      clientId: c.clientId ?? '',
      remoteAddress: c.remote,
      connectedAt: at,
      nodeId: this.nodeId,
    };
    this.enqueue(`connect ${c.id}`, (s) => s.recordConnect(record));
  }

  disconnected(c: LiveConnection, at: Date, reason: string): void {
    this.enqueue(`disconnect ${c.id}`, (s) => s.recordDisconnect(c.id, at, reason));
  }

  /** Resolves once every write queued so far is done (or given up). */
  flush(): Promise<void> {
    return this.#tail;
  }

  private enqueue(what: string, write: (s: ConnectionRecordStore) => Promise<void>): void {
    const store = this.store;
    if (!store) return;
    if (this.#queued >= MAX_QUEUED) {
      if (this.#dropped++ % 1000 === 0) this.log.error({ what, dropped: this.#dropped }, 'connection record dropped: the write queue is full');
      return;
    }
    this.#queued++;
    this.#tail = this.#tail.then(async () => {
      try {
        await this.attempt(what, () => write(store));
      } finally {
        this.#queued--;
      }
    });
  }

  private async attempt(what: string, write: () => Promise<void>): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        return await write();
      } catch (err) {
        const retry = err instanceof CertfleetError && err.code === 'unavailable' && i < RETRY_MS.length;
        if (!retry) {
          this.log.error({ what, err: err instanceof Error ? err.message : String(err) }, 'connection record not written');
          return;
        }
        await new Promise((r) => setTimeout(r, RETRY_MS[i]));
      }
    }
  }
}
