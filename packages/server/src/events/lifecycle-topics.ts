/**
 * Lifecycle events on MQTT (DESIGN.md: platform topics start with
 * `$certfleet/`): the bus's events that concern devices, published through
 * the broker as the platform, QoS 1, never retained. The reserved-topic
 * guard keeps devices from publishing here; subscribing and receiving are
 * up to each device's policies (e.g. `$certfleet/events/things/+/${thing.name}`).
 *
 *   $certfleet/events/certificates/registered/{caId}        JITP or JITR registered a certificate
 *   $certfleet/events/certificates/activated/{certificateId}
 *   $certfleet/events/certificates/deactivated/{certificateId}
 *   $certfleet/events/certificates/revoked/{certificateId}
 *   $certfleet/events/things/connected/{thingName}          CONNACK accepted
 *   $certfleet/events/things/disconnected/{thingName}       data.reason says why
 *   $certfleet/events/certificates/connected/{certificateId}     the same two for a
 *   $certfleet/events/certificates/disconnected/{certificateId}  certificate on no thing
 *   $certfleet/events/campaigns/{status}/{campaignId}        a rotation campaign running, paused, cancelled, completed
 *   $certfleet/events/campaign-items/{state}/{campaignId}    one target moved on; data names the certificate and thing
 *
 * The payload is the event envelope (envelope.ts), as webhooks receive it.
 */
import type { CertfleetEventName, CertfleetEvents, EventBus } from './bus.js';
import { envelope } from './envelope.js';

export const EVENTS_PREFIX = '$certfleet/events/';

/** What the broker offers for this (RunningBroker.publish). */
export interface PlatformPublisher {
  publish(topic: string, payload: Buffer | string): Promise<void>;
}

const STATUS_TOPIC: Partial<Record<CertfleetEvents['certificate.status-changed']['to'], string>> = {
  active: 'activated',
  inactive: 'deactivated',
  revoked: 'revoked',
};

/** A topic level must not hold a separator, a wildcard or NUL [MQTT-4.7.3-2]; names in the registry never do. */
const SAFE_LEVEL = /^[^/+#\u0000]{1,256}$/;

/** The topic an event goes to, or undefined when it has none (not a lifecycle event, or an unsafe name). */
export function lifecycleTopic<K extends CertfleetEventName>(name: K, event: CertfleetEvents[K]): string | undefined {
  let path: [string, string, string] | undefined;
  switch (name) {
    case 'certificate.registered': {
      const e = event as CertfleetEvents['certificate.registered'];
      path = ['certificates', 'registered', e.caId];
      break;
    }
    case 'certificate.status-changed': {
      const e = event as CertfleetEvents['certificate.status-changed'];
      const what = STATUS_TOPIC[e.to];
      if (what) path = ['certificates', what, e.certificateId];
      break;
    }
    case 'thing.connected':
    case 'thing.disconnected': {
      const e = event as CertfleetEvents['thing.connected'];
      const what = name === 'thing.connected' ? 'connected' : 'disconnected';
      path = e.thingName !== null ? ['things', what, e.thingName] : ['certificates', what, e.certificateId];
      break;
    }
    case 'campaign.status-changed': {
      const e = event as CertfleetEvents['campaign.status-changed'];
      path = ['campaigns', e.status, e.campaignId];
      break;
    }
    case 'campaign.item-changed': {
      const e = event as CertfleetEvents['campaign.item-changed'];
      path = ['campaign-items', e.state, e.campaignId];
      break;
    }
    // One topic for every finding: its resource may be any name, so it travels in the payload only.
    case 'audit.finding':
      return `${EVENTS_PREFIX}audits/findings`;
    default:
      return undefined;
  }
  if (!path || !SAFE_LEVEL.test(path[2])) return undefined;
  return `${EVENTS_PREFIX}${path.join('/')}`;
}

const PUBLISHED: readonly CertfleetEventName[] = ['certificate.registered', 'certificate.status-changed', 'thing.connected', 'thing.disconnected', 'campaign.status-changed', 'campaign.item-changed', 'audit.finding'];

/**
 * Subscribes to the bus and publishes each lifecycle event through the
 * broker; returns the function that unsubscribes. A failed publish (the
 * broker closing) goes to the bus's listener-error handler: the event itself
 * is already committed and has reached webhooks on its own path.
 */
export function publishLifecycleEvents(bus: Pick<EventBus, 'on'>, broker: PlatformPublisher, now: () => Date): () => void {
  const offs = PUBLISHED.map((name) =>
    bus.on(name, async (event: CertfleetEvents[typeof name]) => {
      const topic = lifecycleTopic(name, event);
      if (topic) await broker.publish(topic, JSON.stringify(envelope(name, event, now())));
    }),
  );
  return () => offs.forEach((off) => off());
}
