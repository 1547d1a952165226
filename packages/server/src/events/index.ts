/*
 * Events between the parts of a node: the registry says what changed, the
 * broker (and later webhooks) react. In process for now; across nodes the
 * same bus is to be fed from Redis (DESIGN.md "Scale").
 */
export {
  EventBus,
  type CertfleetEventName,
  type CertfleetEvents,
  type EventBusOptions,
  type EventListener,
  type ThingConnection,
} from './bus.js';
