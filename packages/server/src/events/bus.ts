/**
 * The in-process event bus (DESIGN.md: "events/ event bus (in process; Redis
 * across nodes), webhooks"). A closed set of events, each with one payload
 * shape, so a producer cannot invent a name a consumer does not know and a
 * consumer can switch on the name exhaustively.
 *
 * Dispatch is synchronous, in subscription order, right after the producer's
 * change is durable: a revocation reaches the broker in the same tick. One
 * failing listener never stops the others and never fails the producer (whose
 * change is already committed): its error goes to `onListenerError`.
 */
import { EventEmitter } from 'node:events';
import type { CampaignItemState, CampaignStatus, CaStatus, CertificateStatus } from '../store/index.js';

export interface CertfleetEvents {
  /** After the store committed the new status. */
  'certificate.status-changed': { readonly certificateId: string; readonly from: CertificateStatus; readonly to: CertificateStatus };
  /**
   * A certificate registered on its first connection (provisioning/jit.ts):
   * `active` by just-in-time provisioning, `pending-activation` by
   * just-in-time registration (custom logic then activates it). `caId` is the
   * auto-registering CA that signed it.
   */
  'certificate.registered': { readonly certificateId: string; readonly caId: string; readonly status: CertificateStatus };
  'ca.status-changed': { readonly caId: string; readonly to: CaStatus };
  /** A policy's default document changed, or it was attached or detached (to anything). */
  'policy.changed': { readonly policyName: string };
  /**
   * The thing's attributes or groups changed, or a certificate was attached
   * to or detached from it (then `certificateId` names that certificate).
   */
  'thing.changed': { readonly thingName: string; readonly certificateId?: string };
  /** A device finished CONNECT (CONNACK accepted). `thingName` is null for a certificate on no thing. */
  'thing.connected': ThingConnection;
  'thing.disconnected': ThingConnection & { readonly reason: string };
  /** An audit run found a problem that was not open before (lifecycle/findings.ts). */
  'audit.finding': {
    readonly findingId: string;
    readonly runId: string;
    readonly severity: string;
    readonly reasonCode: string;
    readonly resourceType: string;
    readonly resource: string;
    readonly message: string;
  };
  /** A rotation campaign was created (running), paused, resumed, cancelled or completed (lifecycle/campaigns.ts). */
  'campaign.status-changed': { readonly campaignId: string; readonly status: CampaignStatus };
  /** One target certificate of a campaign moved on (pending → notified → issued → confirmed → retired, or failed with a reason). */
  'campaign.item-changed': {
    readonly campaignId: string;
    readonly certificateId: string;
    readonly thingName: string | null;
    readonly state: CampaignItemState;
    readonly reason?: string;
  };
}

export interface ThingConnection {
  readonly thingName: string | null;
  readonly certificateId: string;
  readonly clientId: string;
  /** `address:port` of the device as the broker saw it. */
  readonly remote: string;
}

export type CertfleetEventName = keyof CertfleetEvents;
export type EventListener<K extends CertfleetEventName> = (event: CertfleetEvents[K]) => void | Promise<void>;

export interface EventBusOptions {
  /** Where a listener's exception or rejection goes. Default: stderr. */
  readonly onListenerError?: (err: unknown, event: CertfleetEventName) => void;
}

export class EventBus {
  readonly #emitter = new EventEmitter();
  readonly #onError: (err: unknown, event: CertfleetEventName) => void;

  constructor(opts: EventBusOptions = {}) {
    // Every node-wide consumer (broker, webhooks, console streams) subscribes
    // once per event; the default limit of 10 would warn for no reason.
    this.#emitter.setMaxListeners(0);
    this.#onError = opts.onListenerError ?? ((err, event) => console.error(`certfleet: a listener of ${event} failed:`, err));
  }

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends CertfleetEventName>(name: K, listener: EventListener<K>): () => void {
    const wrapped = (event: CertfleetEvents[K]) => {
      try {
        const result = listener(event);
        if (result instanceof Promise) result.catch((err: unknown) => this.#onError(err, name));
      } catch (err) {
        this.#onError(err, name);
      }
    };
    this.#emitter.on(name, wrapped);
    return () => {
      this.#emitter.off(name, wrapped);
    };
  }

  /** Calls every listener of `name` before returning; never throws because of a listener. */
  emit<K extends CertfleetEventName>(name: K, event: CertfleetEvents[K]): void {
    this.#emitter.emit(name, Object.freeze({ ...event }));
  }

  listenerCount(name: CertfleetEventName): number {
    return this.#emitter.listenerCount(name);
  }
}
