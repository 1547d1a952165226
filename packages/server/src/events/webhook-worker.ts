/**
 * The webhook delivery worker: on start and every second (and at once when
 * an event is enqueued) it claims the deliveries that are due from the
 * persisted queue, at most `maxInFlight` at a time, POSTs each, and records
 * the outcome. A failed attempt (no answer, a timeout, anything but 2xx) is
 * retried with exponential backoff: 1 s, 2 s, 4 s … capped at 1 h, up to 24
 * attempts (about 12 hours), then given up (kept, with its last error, until
 * pruned). Each claim is a lease: a worker that dies mid-delivery only delays
 * the row until the lease ends, and another node's worker takes it.
 */
import { createHmac } from 'node:crypto';
import type { ClaimedDelivery, WebhookStore } from '../store/index.js';

export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 3_600_000;
export const MAX_ATTEMPTS = 24;

/** What the worker needs of an HTTP client: fetch's shape, so tests can pass their own. */
export type Send = (url: string, init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal; redirect: 'manual' }) => Promise<{ status: number; body?: { cancel(): Promise<void> } | null }>;

export interface WebhookWorkerOptions {
  readonly store: Pick<WebhookStore, 'claimDueDeliveries' | 'finishDelivery' | 'pruneDeliveries'>;
  readonly now?: () => Date;
  /** Default: the global fetch. */
  readonly send?: Send;
  /** Deliveries being sent at once; default 8. */
  readonly maxInFlight?: number;
  /** How often the queue is polled, ms; default 1000. */
  readonly pollMs?: number;
  /** One attempt's limit, ms; default 10 000. */
  readonly timeoutMs?: number;
  /** How long a claim holds a row, ms; longer than timeoutMs. Default 60 000. */
  readonly leaseMs?: number;
  readonly maxAttempts?: number;
  /** Finished rows are removed after this long, ms; default 7 days. */
  readonly retentionMs?: number;
  /** In [0, 1): spreads retries by up to 10 % so a receiver coming back is not hit by every retry at once. */
  readonly random?: () => number;
  readonly onError?: (err: unknown, what: string) => void;
}

/** The delay before attempt n + 1 after n failed attempts (n ≥ 1): 1 s · 2^(n-1), at most 1 h, plus up to 10 % jitter within that cap. */
export function retryDelayMs(failedAttempts: number, random: () => number = Math.random): number {
  const base = Math.min(RETRY_BASE_MS * 2 ** Math.max(0, failedAttempts - 1), RETRY_MAX_MS);
  return Math.min(Math.round(base * (1 + 0.1 * random())), RETRY_MAX_MS);
}

/** The signature header's value: `sha256=` and the hex HMAC-SHA256 of the exact body with the webhook's secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const HOUR = 3_600_000;

export class WebhookWorker {
  readonly #o: Required<Omit<WebhookWorkerOptions, 'send'>> & { send: Send };
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #ticking = false;
  #again = false;
  #prunedAt = -Infinity;

  constructor(opts: WebhookWorkerOptions) {
    this.#o = {
      now: () => new Date(),
      send: (url, init) => fetch(url, init),
      maxInFlight: 8,
      pollMs: 1000,
      timeoutMs: 10_000,
      leaseMs: 60_000,
      maxAttempts: MAX_ATTEMPTS,
      retentionMs: 7 * 24 * HOUR,
      random: Math.random,
      onError: (err, what) => console.error(`certfleet: ${what} failed:`, err),
      ...opts,
    };
    if (this.#o.leaseMs <= this.#o.timeoutMs) throw new RangeError('leaseMs must be longer than timeoutMs');
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#timer = setInterval(() => this.kick(), this.#o.pollMs);
    // The API and broker keep a node alive; this timer alone should not.
    this.#timer.unref();
    this.kick();
  }

  /** Stops claiming and waits for the deliveries in flight to be sent and recorded. */
  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#timer);
    while (this.#inFlight.size > 0 || this.#ticking) {
      await Promise.allSettled([...this.#inFlight]);
      if (this.#ticking) await new Promise((r) => setImmediate(r));
    }
  }

  /** Looks for due deliveries now (after an enqueue, or when one finished). */
  kick(): void {
    if (!this.#running) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    void this.#tick()
      .catch((err: unknown) => this.#o.onError(err, 'webhook queue poll'))
      .finally(() => {
        this.#ticking = false;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  async #tick(): Promise<void> {
    const now = this.#o.now();
    if (now.getTime() - this.#prunedAt >= HOUR) {
      this.#prunedAt = now.getTime();
      await this.#o.store.pruneDeliveries(new Date(now.getTime() - this.#o.retentionMs));
    }
    const room = this.#o.maxInFlight - this.#inFlight.size;
    if (room <= 0 || !this.#running) return;
    const claimed = await this.#o.store.claimDueDeliveries(now, room, new Date(now.getTime() + this.#o.leaseMs));
    for (const d of claimed) {
      const p: Promise<void> = this.#deliver(d)
        .catch((err: unknown) => this.#o.onError(err, `webhook delivery ${d.id}`))
        .finally(() => {
          this.#inFlight.delete(p);
          this.kick();
        });
      this.#inFlight.add(p);
    }
    // A full batch: more may be due.
    if (claimed.length === room) this.#again = true;
  }

  async #deliver(d: ClaimedDelivery): Promise<void> {
    let error: string;
    try {
      const type = (JSON.parse(d.event) as { type?: unknown }).type;
      const res = await this.#o.send(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'certfleet-webhooks/1',
          'x-certfleet-event': typeof type === 'string' ? type : 'unknown',
          'x-certfleet-delivery': d.id,
          'x-certfleet-signature': signature(d.secret, d.event),
        },
        body: d.event,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
        // A redirect is not followed: it is an answer other than 2xx, so a failure.
        redirect: 'manual',
      });
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 300) {
        await this.#o.store.finishDelivery(d.id, { delivered: true, at: this.#o.now() });
        return;
      }
      error = `HTTP ${res.status}`;
    } catch (err) {
      error = describe(err);
    }
    const retryAt = d.attempts >= this.#o.maxAttempts ? null : new Date(this.#o.now().getTime() + retryDelayMs(d.attempts, this.#o.random));
    await this.#o.store.finishDelivery(d.id, { delivered: false, error, retryAt });
  }
}

/** fetch's errors hide the reason in `cause` (ECONNREFUSED, a TLS failure…). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'timed out';
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause ? `${err.message}: ${cause.code ?? cause.message ?? ''}` : err.message;
}
