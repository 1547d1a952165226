/**
 * The device endpoint (MQTT 3.1.1 and 5) behind a TLS listener (listener.ts): admission on the
 * certificate chain each client sent, and only then the MQTT engine; a
 * refused device never reaches MQTT. Policies decide every connect, publish,
 * subscribe and receive after that (authorization.ts). One endpoint serves
 * one data set: a node with tenants runs one per tenant, so their topics,
 * sessions and retained messages never meet.
 */
import { hostname } from 'node:os';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import type { Admission, AdmissionResult } from './admission.js';
import { Authorizer, DEVICE_REQUEST_TOPICS } from './authorization.js';
import { ConnectionLog, type ConnectionRecordStore } from './connection-log.js';
import { peerChain } from './peer-chain.js';
import { MqttEngine, type BrokerLogger } from './engine.js';
import type { RefusalReason } from './live-connections.js';
import { brokerMetrics } from './metrics.js';
import { PolicyLoader, type PolicySources } from './policy-session.js';
import { RequestRouter, type RequestHandler } from './requests.js';
import { announce, CaChanges, disconnect, followRegistry } from './registry-events.js';

export interface BrokerLimits {
  /** ms a client has to finish the TLS handshake. */
  readonly handshakeTimeoutMs: number;
  /** ms from the end of the handshake to CONNECT, admission included. */
  readonly connectTimeoutMs: number;
  /** Bytes of one MQTT packet after its fixed header; a larger one closes that connection (MQTT 5: DISCONNECT 0x95). */
  readonly maxPacketSize: number;
  /** Topic filters one client may hold; SUBACK 0x80 (MQTT 5: 0x87) for each beyond. */
  readonly maxSubscriptionsPerClient: number;
}

export const DEFAULT_LIMITS: BrokerLimits = Object.freeze({
  handshakeTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxPacketSize: 256 * 1024,
  maxSubscriptionsPerClient: 100,
});

export interface DeviceEndpointOptions {
  readonly admission: Pick<Admission, 'admit' | 'invalidate'>;
  /** Where each connection's certificate, policies and thing are read at CONNECT (the Store has all three). */
  readonly policies: PolicySources;
  /** Where connection records go (the Store); without it none are written. */
  readonly connections?: ConnectionRecordStore;
  /** The registry's events to follow, and where thing.connected / thing.disconnected go. */
  readonly events?: EventBus;
  /** This node's stable name in connection records (default: the host name); one per node sharing a database. */
  readonly nodeId?: string;
  readonly limits?: Partial<BrokerLimits>;
  /** `$certfleet/` request topics devices may publish to (topic filters); default DEVICE_REQUEST_TOPICS. */
  readonly requestTopics?: readonly string[];
  /** Answers `$certfleet/` requests (fleet provisioning, renewal, …); their topics join requestTopics and must not overlap. */
  readonly requests?: RequestHandler | readonly RequestHandler[];
  readonly now?: () => Date;
  readonly logger?: BrokerLogger;
}

export interface DeviceEndpoint {
  /** Admits a connection whose TLS handshake the listener finished, then hands it to MQTT; it is closed if refused. */
  accept(socket: TLSSocket): void;
  /** Closes every connection of the certificate now, its will unpublished; returns how many. */
  disconnectCertificate(certificateId: string, reason: string): number;
  /**
   * Publishes a platform message (QoS 1) to the subscribers whose policies
   * allow them to receive it; resolves once handed to them. With `retain` the
   * broker also keeps it for later subscribers, and an empty retained payload
   * clears what it kept (MQTT 3.1.1 §3.3.1.3). Refused once the endpoint is closing.
   */
  publish(topic: string, payload: Buffer | string, opts?: { readonly retain?: boolean }): Promise<void>;
  /** Disconnects every client, pending or admitted, and waits for their records. */
  close(): Promise<void>;
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

/** Validated once, at start (STYLE.md rule 6). */
export function resolveLimits(given: Partial<BrokerLimits> = {}): BrokerLimits {
  const limits = { ...DEFAULT_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new CertfleetError('bad-request', `broker limit ${name} must be a positive integer, not ${value}`);
  }
  // The Remaining Length field cannot say more than 268,435,455 (§2.2.3).
  if (limits.maxPacketSize > 268_435_455) throw new CertfleetError('bad-request', 'broker limit maxPacketSize is above what MQTT can encode');
  return limits;
}

export async function startDeviceEndpoint(opts: DeviceEndpointOptions): Promise<DeviceEndpoint> {
  const limits = resolveLimits(opts.limits);
  const now = opts.now ?? (() => new Date());
  // stderr by default: stdout carries the operator lines `certfleet serve` prints.
  const log: BrokerLogger = opts.logger ?? pino({ name: 'certfleet-broker' }, pino.destination(2));
  const records = new ConnectionLog(opts.connections, opts.nodeId ?? hostname(), log);
  await records.recover(now());
  const refused = (reason: RefusalReason, f: Record<string, unknown>) => {
    brokerMetrics.admissionsRefused.inc({ reason });
    log.warn({ reason, ...f }, 'device refused');
  };
  const requests = new RequestRouter(opts.requests);
  const policies = new PolicyLoader(opts.policies, (name, err) => log.error({ policy: name, err: String(err) }, 'stored policy document is invalid; its connections are denied everything'));
  // Before followRegistry: an event ends the loader's epoch before stale sessions reload.
  const unfollowPolicies = opts.events ? policies.follow(opts.events) : () => {};
  const engine = await MqttEngine.start({
    authorizer: new Authorizer([...(opts.requestTopics ?? DEVICE_REQUEST_TOPICS), ...requests.topics]),
    requests,
    policies,
    log,
    now,
    connectTimeoutMs: limits.connectTimeoutMs,
    maxPacketSize: limits.maxPacketSize,
    maxSubscriptionsPerClient: limits.maxSubscriptionsPerClient,
    onSession(c) {
      brokerMetrics.connections.inc();
      records.connected(c, c.connectedAt ?? now());
      announce(opts.events, c);
    },
    onSessionEnd(c, reason, at) {
      brokerMetrics.connections.dec();
      records.disconnected(c, at, reason);
      announce(opts.events, c, reason);
    },
    onRefused: refused,
  });
  const caChanges = new CaChanges(limits.connectTimeoutMs * 2);
  const unfollow = opts.events ? followRegistry(opts.events, engine, opts.admission, caChanges) : () => {};
  // Every connection handed over, from accept to close: close() must end those
  // still in admission too, which aedes does not know about.
  const sockets = new Set<Socket>();
  let closing: Promise<void> | undefined;

  async function admit(socket: TLSSocket): Promise<void> {
    const remote = remoteOf(socket);
    const since = performance.now();
    // Read before admission reads the certificate: see DeviceIdentity.recordEpoch.
    const recordEpoch = policies.epoch;
    // Until aedes owns the socket, a reset must not become an uncaught 'error'.
    const early = (err: Error) => log.debug({ remote, err: err.message }, 'connection error during admission');
    socket.on('error', early);
    // The socket stays paused: whatever the client sends meanwhile (its
    // CONNECT) waits in the buffer and is read by aedes, or never read at all.
    let timer: NodeJS.Timeout | undefined;
    let result: AdmissionResult | 'timeout';
    try {
      result = await Promise.race([
        opts.admission.admit(peerChain(socket)),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limits.connectTimeoutMs))),
      ]);
    } catch (err) {
      refused('admission-failed', { remote, detail: err instanceof Error ? err.message : String(err) });
      socket.destroy();
      return;
    } finally {
      clearTimeout(timer);
    }
    if (result === 'timeout') {
      refused('admission-timeout', { remote, detail: `admission took more than ${limits.connectTimeoutMs} ms` });
      socket.destroy();
      return;
    }
    if (!result.ok) {
      refused(result.reason, { remote, detail: result.detail });
      socket.destroy();
      return;
    }
    const distrusted = caChanges.disabledSince(result.caIds, since);
    if (distrusted !== undefined) {
      refused('ca-not-active', { remote, certificateId: result.certificateId, detail: `CA ${distrusted} was deactivated during admission` });
      socket.destroy();
      return;
    }
    if (closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.off('error', early);
    const { certificateId, thingName, subjectCn, caIds } = result;
    engine.attach(socket, { certificateId, thingName, subjectCn, caIds, recordEpoch }, remote);
  }

  const close = async () => {
    unfollow();
    unfollowPolicies();
    await engine.close();
    for (const s of sockets) s.destroy();
    // Every session's end is queued by now (aedes.close waits for each client).
    await records.flush();
  };
  return {
    accept(socket) {
      if (closing) {
        socket.destroy();
        return;
      }
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      void admit(socket);
    },
    disconnectCertificate: (certificateId, reason) => disconnect(engine, (c) => c.identity.certificateId === certificateId, reason),
    publish: async (topic, payload, o) => {
      if (closing) throw new CertfleetError('unavailable', 'the broker is closing');
      await engine.publish(topic, typeof payload === 'string' ? Buffer.from(payload) : payload, 1, o?.retain ?? false);
    },
    close: () => (closing ??= close()),
  };
}
