/**
 * The connections this broker holds now, from admission to close: who they
 * are, their policies, their subscriptions, and why they end. The broker
 * finds connections here by certificate or CA when the registry says one
 * changed, so a revoked device is cut off at once (DESIGN.md "Revocation").
 */
import { randomUUID } from 'node:crypto';
import type { AdmissionRefusal, DeviceIdentity } from './admission.js';
import type { PolicySession } from './policy-session.js';

/** Why a connection never became an MQTT session (counted in certfleet_mqtt_admissions_refused_total). */
export type RefusalReason =
  | AdmissionRefusal
  | 'tls-handshake-failed'
  | 'handshake-timeout'
  | 'admission-failed'
  | 'admission-timeout'
  | 'ca-not-active'
  | 'connect-timeout'
  | 'connect-denied'
  | 'policy-unavailable'
  | 'malformed-packet'
  | 'packet-too-large';

/**
 * Why an MQTT session ended, as recorded in the store. Server-side reasons
 * given to RunningBroker.disconnectCertificate() are recorded as given.
 */
export type DisconnectReason =
  | 'client-disconnect'
  | 'connection-lost'
  | 'keepalive-timeout'
  | 'publish-denied'
  | 'malformed-packet'
  | 'packet-too-large'
  | 'protocol-error'
  | 'client-id-takeover'
  | 'server-shutdown'
  | `certificate-${string}`
  | `ca-${string}`
  | (string & {});

export class LiveConnection {
  /** The id of the connection record in the store. */
  readonly id = randomUUID();
  /** Set when CONNECT arrives. */
  clientId: string | null = null;
  /** CONNECT has arrived (whether or not it is accepted). */
  connectSeen = false;
  policy: PolicySession | undefined;
  /** CONNACK accepted sent: an MQTT session, counted and recorded. */
  ready = false;
  connectedAt: Date | undefined;
  /** Granted topic filters, for the per-client limit. */
  readonly subscriptions = new Set<string>();
  /** The first reason given wins: later ones are consequences of it. */
  closeReason: DisconnectReason | RefusalReason | undefined;
  /**
   * The server ended it because its identity is no longer trusted (certificate
   * or CA disabled): its will is not published, since the device can no
   * longer be taken at its word.
   */
  distrusted = false;
  /** Set once its end has been handled (see MqttEngine.finish). */
  finished = false;
  #close: (() => void) | undefined;
  #connectArrived: (() => void) | undefined;

  constructor(
    readonly identity: DeviceIdentity,
    /** `address:port`. */
    readonly remote: string,
  ) {}

  /** Where the MQTT engine says how to close it (an MQTT 5 session is told why first, from closeReason). */
  onClose(close: () => void): void {
    this.#close = close;
  }

  /** Where the MQTT engine says what to do when CONNECT arrives (stop its timer). */
  onConnectArrived(then: () => void): void {
    this.#connectArrived = then;
  }

  connectArrived(): void {
    this.connectSeen = true;
    this.#connectArrived?.();
  }

  get thingName(): string | null {
    return this.policy?.thingName ?? this.identity.thingName;
  }

  /** Ends the connection; the reason is kept only if none was given before. */
  close(reason: DisconnectReason | RefusalReason, opts: { distrusted?: boolean } = {}): void {
    this.closeReason ??= reason;
    if (opts.distrusted) this.distrusted = true;
    this.#close?.();
  }
}

export class LiveConnections {
  readonly #all = new Set<LiveConnection>();
  /** Sessions by MQTT client id: at most one per id [MQTT-3.1.4-2]. */
  readonly #byClientId = new Map<string, LiveConnection>();

  add(c: LiveConnection): void {
    this.#all.add(c);
  }

  /** The connection became a session under its client id. */
  ready(c: LiveConnection): void {
    c.ready = true;
    if (c.clientId !== null) this.#byClientId.set(c.clientId, c);
  }

  /** The session holding this client id now, if any. */
  session(clientId: string): LiveConnection | undefined {
    return this.#byClientId.get(clientId);
  }

  delete(c: LiveConnection): void {
    this.#all.delete(c);
    if (c.clientId !== null && this.#byClientId.get(c.clientId) === c) this.#byClientId.delete(c.clientId);
  }

  get size(): number {
    return this.#all.size;
  }

  /** A copy: closing a connection while iterating removes it. */
  where(match: (c: LiveConnection) => boolean): LiveConnection[] {
    return [...this.#all].filter(match);
  }

  all(): LiveConnection[] {
    return [...this.#all];
  }
}
