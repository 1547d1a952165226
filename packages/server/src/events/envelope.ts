/**
 * The one JSON shape an event leaves the node in, on MQTT lifecycle topics
 * and in webhook deliveries alike: `{ id, type, at, data }`.
 */
import { randomUUID } from 'node:crypto';
import type { CertfleetEventName, CertfleetEvents } from './bus.js';

export interface EventEnvelope<K extends CertfleetEventName = CertfleetEventName> {
  /** Unique per event (a UUID): receivers drop repeats by it. */
  readonly id: string;
  readonly type: K;
  /** When the node saw the event, ISO-8601 UTC. */
  readonly at: string;
  readonly data: CertfleetEvents[K];
}

/**
 * Every event name, so names from outside (a webhook's `events`) can be
 * checked at run time. A Record over the union: adding an event to
 * CertfleetEvents without listing it here does not compile.
 */
const NAMES: Record<CertfleetEventName, true> = {
  'certificate.status-changed': true,
  'certificate.registered': true,
  'ca.status-changed': true,
  'policy.changed': true,
  'thing.changed': true,
  'thing.connected': true,
  'thing.disconnected': true,
  'audit.finding': true,
  'campaign.status-changed': true,
  'campaign.item-changed': true,
};
export const EVENT_NAMES = Object.freeze(Object.keys(NAMES) as CertfleetEventName[]);

export function isEventName(name: unknown): name is CertfleetEventName {
  return typeof name === 'string' && Object.hasOwn(NAMES, name);
}

export function envelope<K extends CertfleetEventName>(type: K, data: CertfleetEvents[K], at: Date): EventEnvelope<K> {
  return { id: randomUUID(), type, at: at.toISOString(), data };
}
