/**
 * The device endpoint on its own port: MQTT 3.1.1 and 5 over mutual TLS
 * (DESIGN.md "Device endpoint"). A node:tls server asks every client for a
 * certificate (listener.ts), admission runs on the chain it sent, and only
 * then is the socket handed to the MQTT engine; a refused device never
 * reaches MQTT (endpoint.ts). Policies decide every connect, publish,
 * subscribe and receive after that (authorization.ts). `certfleet serve`
 * puts one listener in front of an endpoint per tenant instead (node/).
 */
import { pino } from 'pino';
import { resolveLimits, startDeviceEndpoint, type DeviceEndpoint, type DeviceEndpointOptions } from './endpoint.js';
import type { BrokerLogger } from './engine.js';
import { startDeviceListener } from './listener.js';

export { DEFAULT_LIMITS, resolveLimits, type BrokerLimits } from './endpoint.js';

export interface BrokerOptions extends DeviceEndpointOptions {
  /** Default: every address (IPv6 and IPv4 where the host has both). */
  readonly host?: string;
  /** 0 picks a free port; the bound one is returned. */
  readonly port: number;
  /** PEM; `cert` is the server leaf followed by its intermediates (RFC 8446 §4.4.2), so a device holding only the root can verify it. */
  readonly tls: { readonly key: string; readonly cert: string };
}

export interface RunningBroker extends Omit<DeviceEndpoint, 'accept' | 'close'> {
  readonly port: number;
  /** Disconnects every client, pending or admitted, waits for their records, and stops listening. */
  close(): Promise<void>;
}

export async function startBroker(opts: BrokerOptions): Promise<RunningBroker> {
  const limits = resolveLimits(opts.limits);
  // stderr by default: stdout carries the operator lines `certfleet serve` prints.
  const log: BrokerLogger = opts.logger ?? pino({ name: 'certfleet-broker' }, pino.destination(2));
  const endpoint = await startDeviceEndpoint({ ...opts, logger: log });
  let listener;
  try {
    listener = await startDeviceListener({
      ...(opts.host === undefined ? {} : { host: opts.host }),
      port: opts.port,
      tls: opts.tls,
      handshakeTimeoutMs: limits.handshakeTimeoutMs,
      log,
      route: () => endpoint,
    });
  } catch (err) {
    await endpoint.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    disconnectCertificate: (certificateId, reason) => endpoint.disconnectCertificate(certificateId, reason),
    publish: (topic, payload, o) => endpoint.publish(topic, payload, o),
    // Stop accepting; the endpoint ends every session (each recorded as a shutdown); then whatever is left is cut.
    close: () => (closing ??= listener.close(() => endpoint.close())),
  };
}
