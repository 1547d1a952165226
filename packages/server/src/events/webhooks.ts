/**
 * Webhooks (DESIGN.md "Lifecycle": webhooks for every event). An operator
 * registers a URL and the events it wants; each matching bus event is
 * written to the persisted delivery queue (store, `webhook_deliveries`)
 * first, and only then sent, by the worker (webhook-worker.ts), as
 *
 *   POST <url>   Content-Type: application/json
 *   X-Certfleet-Event: <type>   X-Certfleet-Delivery: <delivery id>
 *   X-Certfleet-Signature: sha256=<hex HMAC-SHA256(secret, body)>
 *   { "id", "type", "at", "data" }   (envelope.ts)
 *
 * retried with exponential backoff until a 2xx answer, so a restart or an
 * unreachable receiver loses nothing that was enqueued. Delivery is at least
 * once and not ordered: receivers dedupe by the event id and order by `at`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CertfleetError } from '../errors.js';
import { audit, type Actor } from '../registry/actor.js';
import type { WebhookDeliveryRecord, WebhookRecord, WebhookStore } from '../store/index.js';
import type { CertfleetEventName, CertfleetEvents, EventBus } from './bus.js';
import { envelope, EVENT_NAMES, isEventName } from './envelope.js';
import { WebhookWorker, type WebhookWorkerOptions } from './webhook-worker.js';

export const MAX_URL_LENGTH = 2048;
const MAX_EVENTS = EVENT_NAMES.length + 1;
/** Printable ASCII: a secret goes through shells, env vars and config files. */
const SECRET = /^[\x21-\x7e]{8,256}$/;

export interface NewWebhookRequest {
  readonly url: unknown;
  readonly events: unknown;
  readonly secret?: unknown;
}

/** A webhook as created: `secret` is returned this once (the API never lists it). */
export interface CreatedWebhook {
  readonly webhook: WebhookRecord;
  readonly secret: string;
}

export function checkWebhookUrl(url: unknown): string {
  if (typeof url !== 'string' || url.length === 0 || url.length > MAX_URL_LENGTH) throw new CertfleetError('bad-request', `url must be a string of 1-${MAX_URL_LENGTH} characters`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CertfleetError('bad-request', `url "${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CertfleetError('bad-request', 'url must be http:// or https://');
  return parsed.href;
}

export function checkEventNames(events: unknown): string[] {
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_EVENTS) {
    throw new CertfleetError('bad-request', `events must be a list of 1-${MAX_EVENTS} event names, or ["*"]`);
  }
  if (events.includes('*')) {
    if (events.length !== 1) throw new CertfleetError('bad-request', 'events: "*" stands alone');
    return ['*'];
  }
  for (const e of events) {
    if (!isEventName(e)) throw new CertfleetError('bad-request', `events: unknown event ${JSON.stringify(e)} (one of ${EVENT_NAMES.join(', ')}, or "*")`);
  }
  return [...new Set(events as string[])];
}

export interface WebhooksDeps {
  readonly store: WebhookStore;
  readonly bus: Pick<EventBus, 'on'>;
  readonly now: () => Date;
  /** How long the list of webhooks is reused between events, in ms (other nodes' changes show after at most this). Default 5000. */
  readonly cacheMs?: number;
  /** Where a failed enqueue is reported (the event is then lost for webhooks). Default: stderr. */
  readonly onError?: (err: unknown, what: string) => void;
}

/** Registry of webhooks, and the dispatcher from the bus into the delivery queue. */
export class Webhooks {
  #cache: { at: number; hooks: Promise<WebhookRecord[]> } | undefined;
  #offs: Array<() => void> = [];
  readonly #pending = new Set<Promise<void>>();
  #worker: WebhookWorker | undefined;

  constructor(private readonly deps: WebhooksDeps) {}

  async create(actor: Actor, req: NewWebhookRequest): Promise<CreatedWebhook> {
    const url = checkWebhookUrl(req.url);
    const events = checkEventNames(req.events);
    if (req.secret !== undefined && (typeof req.secret !== 'string' || !SECRET.test(req.secret))) {
      throw new CertfleetError('bad-request', 'secret must be 8-256 printable ASCII characters without spaces (32 random bytes are best; left out, one is made)');
    }
    const secret = (req.secret as string | undefined) ?? randomBytes(32).toString('base64url');
    const id = `wh-${randomBytes(8).toString('hex')}`;
    // The audit entry names the URL and events, never the secret.
    const webhook = await this.deps.store.createWebhook({ id, url, events, secret, createdAt: this.deps.now() }, audit(actor, 'webhook.create', `webhook:${id}`, { url, events }));
    this.invalidate();
    return { webhook, secret };
  }

  list(): Promise<WebhookRecord[]> {
    return this.deps.store.listWebhooks();
  }

  async get(id: string): Promise<WebhookRecord> {
    const w = await this.deps.store.getWebhook(id);
    if (!w) throw new CertfleetError('not-found', `no webhook ${id}`);
    return w;
  }

  async delete(actor: Actor, id: string): Promise<void> {
    const w = await this.get(id);
    await this.deps.store.deleteWebhook(w.id, audit(actor, 'webhook.delete', `webhook:${w.id}`, { url: w.url }));
    this.invalidate();
  }

  async deliveries(id: string, limit: number): Promise<WebhookDeliveryRecord[]> {
    const w = await this.get(id);
    return this.deps.store.listDeliveries(w.id, limit);
  }

  /** Starts enqueueing every bus event that a webhook wants. Idempotent. */
  startDispatching(): void {
    if (this.#offs.length > 0) return;
    this.#offs = EVENT_NAMES.map((name) => this.deps.bus.on(name, (event) => this.#track(this.enqueue(name, event))));
  }

  /** Starts delivering from the queue (one worker per node; several nodes may share a database). */
  startWorker(opts: Omit<WebhookWorkerOptions, 'store'> = {}): WebhookWorker {
    this.#worker ??= new WebhookWorker({ now: this.deps.now, ...opts, store: this.deps.store });
    this.#worker.start();
    return this.#worker;
  }

  /** Stops dispatching, waits for enqueues under way, and stops the worker (waiting for deliveries in flight). */
  async stop(): Promise<void> {
    for (const off of this.#offs) off();
    this.#offs = [];
    await this.idle();
    await this.#worker?.stop();
    this.#worker = undefined;
  }

  /** Resolves once every enqueue started so far is durable (or failed). */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Writes one delivery per webhook that wants the event, then wakes the worker. */
  async enqueue<K extends CertfleetEventName>(name: K, event: CertfleetEvents[K]): Promise<void> {
    const hooks = (await this.webhooks()).filter((w) => w.events.includes('*') || w.events.includes(name));
    if (hooks.length === 0) return;
    const at = this.deps.now();
    const body = JSON.stringify(envelope(name, event, at));
    await this.deps.store.enqueueDeliveries(hooks.map((w) => ({ id: randomUUID(), webhookId: w.id, event: body, nextAttemptAt: at, createdAt: at })));
    this.#worker?.kick();
  }

  /** Forgets the cached webhook list (after a change on this node). */
  invalidate(): void {
    this.#cache = undefined;
  }

  private webhooks(): Promise<WebhookRecord[]> {
    const t = performance.now();
    const hit = this.#cache;
    if (hit && t - hit.at < (this.deps.cacheMs ?? 5000)) return hit.hooks;
    const hooks = this.deps.store.listWebhooks();
    const entry = { at: t, hooks };
    this.#cache = entry;
    hooks.catch(() => {
      if (this.#cache === entry) this.#cache = undefined;
    });
    return hooks;
  }

  #track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => (this.deps.onError ?? defaultOnError)(err, 'webhook enqueue'));
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }
}

function defaultOnError(err: unknown, what: string): void {
  console.error(`certfleet: ${what} failed:`, err);
}
