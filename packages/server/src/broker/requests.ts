/**
 * Device requests on `$certfleet/` topics (DESIGN.md "Public contract": every
 * request gets an answer on `…/accepted` or `…/rejected`). The broker only
 * routes: a request a device was allowed to publish goes to the handler
 * registered for it (fleet provisioning, renewal…), and the answer goes back
 * to that client alone, never through the broker's subscriptions, so no
 * other device can see it (it may carry a certificate's ownership token or a
 * private key). The request itself is delivered to no subscriber either.
 */
import { CertfleetError } from '../errors.js';
import type { DeviceIdentity } from './admission.js';
import { topicMatchesFilter } from '../registry/policy/index.js';

/** Every request topic is a platform topic (DESIGN.md: they all start with `$certfleet/`). */
const REQUEST_PREFIX = '$certfleet/';

/** Fleet provisioning by claim, as the AWS IoT API under `$certfleet/` (DESIGN.md). */
export const CREATE_FROM_CSR_TOPIC = '$certfleet/certificates/create-from-csr/json';
export const CREATE_KEYS_TOPIC = '$certfleet/certificates/create/json';
export const PROVISION_TOPIC_FILTER = '$certfleet/provisioning-templates/+/provision/json';
export const provisionTopic = (template: string): string => `$certfleet/provisioning-templates/${template}/provision/json`;

/** The request topics a claim certificate may publish to: its own template's and nothing else. */
export function claimRequestTopics(template: string): string[] {
  return [CREATE_FROM_CSR_TOPIC, CREATE_KEYS_TOPIC, provisionTopic(template)];
}

/**
 * A thing's own request topics (docs/device-protocol.md): a device may always
 * publish these under `$certfleet/things/{its thing}/`, and never another
 * thing's (authorization.ts).
 */
export const THING_TOPICS_PREFIX = '$certfleet/things/';
export const THING_REQUEST_SUFFIXES = ['certificate/renew', 'certificate/confirm', 'trust-bundle/ack'] as const;
export type ThingRequest = (typeof THING_REQUEST_SUFFIXES)[number];
export const thingRequestFilter = (suffix: ThingRequest): string => `${THING_TOPICS_PREFIX}+/${suffix}`;
export const thingTopic = (thing: string, suffix: string): string => `${THING_TOPICS_PREFIX}${thing}/${suffix}`;

/** The `{thing}` level of a topic or filter under `$certfleet/things/`, or undefined for any other. */
export function thingOfTopic(topic: string): string | undefined {
  if (!topic.startsWith(THING_TOPICS_PREFIX)) return undefined;
  const rest = topic.slice(THING_TOPICS_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}

/** The part after `$certfleet/things/{thing}/` ('' for the thing's level itself). */
export function thingTopicSuffix(topic: string): string {
  const thing = thingOfTopic(topic);
  return thing === undefined ? '' : topic.slice(THING_TOPICS_PREFIX.length + thing.length + 1);
}

export const ANSWERS = ['accepted', 'rejected'] as const;
export type Outcome = (typeof ANSWERS)[number];

export interface DeviceRequest {
  readonly topic: string;
  readonly payload: Buffer;
  readonly clientId: string;
  /** Who asks; the handler decides what that certificate may ask for (a claim credential, …). */
  readonly identity: DeviceIdentity;
}

export interface DeviceAnswer {
  readonly outcome: Outcome;
  /** Sent as JSON on `<request topic>/<outcome>`. */
  readonly body: unknown;
}

/** What answers requests; its topics join the broker's request allow-list. */
export interface RequestHandler {
  /** Topic filters of the requests it answers, each under `$certfleet/`. */
  readonly topics: readonly string[];
  /** Resolves with the answer; a rejection here becomes a generic 500 rejected answer. */
  handle(req: DeviceRequest): Promise<DeviceAnswer>;
}

/**
 * Whether some topic could match both filters (MQTT 3.1.1 §4.7): level by
 * level, `#` matches the rest, `+` any one level, anything else only itself.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}

/**
 * One handler answering for several: each request goes to the one whose
 * topics match. Topics must not overlap, so which handler answers never
 * depends on the order they were given in.
 */
export function combineRequestHandlers(...handlers: readonly RequestHandler[]): RequestHandler {
  const owned: Array<[string, RequestHandler]> = [];
  for (const h of handlers) {
    for (const f of h.topics) {
      const clash = owned.find(([g]) => filtersOverlap(f, g));
      if (clash) throw new CertfleetError('conflict', `request topic ${f} overlaps ${clash[0]}, which another handler answers`);
      owned.push([f, h]);
    }
  }
  return {
    topics: owned.map(([f]) => f),
    handle(req) {
      const found = owned.find(([f]) => topicMatchesFilter(req.topic, f));
      if (!found) return Promise.reject(new CertfleetError('not-found', `nothing answers ${req.topic}`));
      return found[1].handle(req);
    },
  };
}

/** Requests one connection may have in flight; beyond, each is answered 429 at once. */
export const MAX_IN_FLIGHT_PER_CONNECTION = 8;

export class RequestRouter {
  readonly #inFlight = new WeakMap<object, number>();

  private readonly handler: RequestHandler | undefined;

  /** Several handlers are combined (combineRequestHandlers): their topics must not overlap. */
  constructor(handlers: RequestHandler | readonly RequestHandler[] | undefined) {
    const handler = Array.isArray(handlers) ? combineRequestHandlers(...(handlers as readonly RequestHandler[])) : (handlers as RequestHandler | undefined);
    this.handler = handler;
    const outside = handler?.topics.find((f) => !f.startsWith(REQUEST_PREFIX));
    if (outside !== undefined) throw new CertfleetError('bad-request', `request topic ${outside} is not under ${REQUEST_PREFIX}`);
  }

  get topics(): readonly string[] {
    return this.handler?.topics ?? [];
  }

  /** True for a topic some handler answers. On every delivery's path: anything outside `$certfleet/` is a no at once. */
  handles(topic: string): boolean {
    if (this.handler === undefined || !topic.startsWith(REQUEST_PREFIX)) return false;
    return this.handler.topics.some((f) => topicMatchesFilter(topic, f));
  }

  /**
   * Runs the handler for one request and hands its answer to `send` (which
   * delivers to the requesting client only). `connection` keys the
   * per-connection limit. Never rejects.
   */
  async dispatch(connection: object, req: DeviceRequest, send: (topic: string, payload: Buffer) => void, onError: (err: unknown) => void): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    const n = this.#inFlight.get(connection) ?? 0;
    if (n >= MAX_IN_FLIGHT_PER_CONNECTION) {
      send(`${req.topic}/rejected`, answerPayload({ statusCode: 429, errorCode: 'Throttled', errorMessage: `at most ${MAX_IN_FLIGHT_PER_CONNECTION} requests in flight per connection` }));
      return;
    }
    this.#inFlight.set(connection, n + 1);
    let answer: DeviceAnswer;
    try {
      answer = await handler.handle(req);
    } catch (err) {
      onError(err);
      answer = { outcome: 'rejected', body: { statusCode: 500, errorCode: 'InternalError', errorMessage: 'internal error' } };
    } finally {
      this.#inFlight.set(connection, (this.#inFlight.get(connection) ?? 1) - 1);
    }
    send(`${req.topic}/${answer.outcome}`, answerPayload(answer.body));
  }
}

function answerPayload(body: unknown): Buffer {
  return Buffer.from(JSON.stringify(body));
}
