/**
 * The device endpoint's Prometheus metrics, on a registry of their own so
 * http/ decides where they are served (`/metrics`) and tests start no global
 * state. Every broker of the process counts into the same metrics.
 */
import { Counter, Gauge, Registry } from 'prom-client';

const registry = new Registry();

export const brokerMetrics = {
  connections: new Gauge({
    name: 'certfleet_mqtt_connections',
    help: 'MQTT sessions open now (CONNACK accepted, not yet closed).',
    registers: [registry],
  }),
  admissionsRefused: new Counter({
    name: 'certfleet_mqtt_admissions_refused_total',
    help: 'Connections refused before an MQTT session began, by reason (TLS, admission, CONNECT).',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  messagesIn: new Counter({
    name: 'certfleet_mqtt_messages_in_total',
    help: 'PUBLISH packets from devices that were authorised and published.',
    registers: [registry],
  }),
  messagesOut: new Counter({
    name: 'certfleet_mqtt_messages_out_total',
    help: 'Messages authorised for delivery to a device.',
    registers: [registry],
  }),
  publishDenied: new Counter({
    name: 'certfleet_mqtt_publish_denied_total',
    help: 'PUBLISH packets refused, by reason; MQTT 3.1.1 closes the connection for each [MQTT-3.3.5-2], MQTT 5 answers 0x87 and keeps it.',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  subscribeDenied: new Counter({
    name: 'certfleet_mqtt_subscribe_denied_total',
    help: 'Topic filters refused with SUBACK 0x80 (MQTT 5: 0x87), by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  receiveDenied: new Counter({
    name: 'certfleet_mqtt_receive_denied_total',
    help: 'Messages not delivered to a subscribed device because its policies deny receive, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
} as const;

/** The registry holding every broker metric, for http/ to serve as `/metrics` (`await registry.metrics()`, `registry.contentType`). */
export function brokerMetricsRegistry(): Registry {
  return registry;
}
