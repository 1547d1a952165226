/**
 * aedes behind one small typed adapter: the rest of certfleet sees admitted
 * connections, topics and verdicts, never aedes' clients, packets or
 * callbacks. Every socket handed to the engine arrives with the identity
 * admission gave it, so every hook knows which certificate is asking.
 */
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Duplex } from 'node:stream';
import { CertfleetError } from '../errors.js';
import type { DeviceIdentity } from './admission.js';
import { packetTooLarge, sentDisconnect, watchParseErrors, wireSize } from './aedes-internals.js';
import type { Authorizer, Verdict } from './authorization.js';
import { LiveConnection, LiveConnections, type DisconnectReason, type RefusalReason } from './live-connections.js';
import { brokerMetrics } from './metrics.js';
import { PolicySession, type PolicyLoader } from './policy-session.js';
import { disconnectReasonCode } from './reason-codes.js';
import type { RequestRouter } from './requests.js';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;
/** pino's Logger fits, and so does `console`. */
export interface BrokerLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

export interface EngineOptions {
  readonly authorizer: Authorizer;
  readonly policies: PolicyLoader;
  readonly log: BrokerLogger;
  readonly now: () => Date;
  /** ms from attach to CONNECT. */
  readonly connectTimeoutMs: number;
  /** Bytes of one MQTT packet, fixed header excluded. */
  readonly maxPacketSize: number;
  readonly maxSubscriptionsPerClient: number;
  /** Where `$certfleet/` requests go (requests.ts); without it none is answered. */
  readonly requests?: RequestRouter;
  /** A connection became an MQTT session (CONNACK 0 sent). */
  readonly onSession: (c: LiveConnection) => void;
  /** A session ended (called once per onSession). */
  readonly onSessionEnd: (c: LiveConnection, reason: DisconnectReason, at: Date) => void;
  /** A connection was refused before it became a session. */
  readonly onRefused: (reason: RefusalReason, fields: Record<string, unknown>) => void;
}

/**
 * aedes' CONNACK return codes (MQTT 3.1.1 §3.2.2.3); for an MQTT 5 client
 * aedes sends the matching reason code (MQTT 5 §3.2.2.2): 0x88 Server
 * unavailable, 0x87 Not authorized.
 */
const SERVER_UNAVAILABLE = 3;
const NOT_AUTHORIZED = 5;

/**
 * How long an MQTT 5 client has to take the DISCONNECT certfleet sends it
 * before its connection is cut all the same: aedes waits for the write, and
 * a client that does not read would otherwise keep a revoked session open
 * for aedes' drain timeout (a minute).
 */
const DISCONNECT_GRACE_MS = 300;

/**
 * MQTT 5 sessions may outlive their connection (Session Expiry Interval,
 * MQTT 5 §3.1.2.11.2); aedes keeps them, and delayed wills, in memory. The
 * caps bound what one device cycling through client ids can pin.
 */
const SESSION_EXPIRY_LIMIT_S = 7 * 24 * 3600;
const PENDING_SESSIONS_LIMIT = 100_000;

/**
 * Answers to device requests, by payload buffer, with the one client each is
 * for: aedes hands authorizeForward a copy of the packet but the same
 * payload buffer, so this is how a delivery is recognised as an answer.
 */
const answerFor = new WeakMap<Buffer, Client>();

/**
 * Refusals of an MQTT 5 PUBLISH: aedes answers PUBACK/PUBREC 0x87 (or drops
 * a QoS 0 one), keeps the connection and reports the error as a client
 * error, which for these ends nothing.
 */
const keptOpen = new WeakSet<Error>();

const fields = (c: LiveConnection | undefined) => ({
  clientId: c?.clientId ?? null,
  certificateId: c?.identity.certificateId ?? null,
  thingName: c?.thingName ?? null,
});

function connackError(returnCode: 3 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class MqttEngine {
  readonly connections = new LiveConnections();
  /** aedes' client of each connection, to close it. */
  private readonly clientOf = new WeakMap<LiveConnection, Client>();
  private warnedUnguarded = false;

  private constructor(
    private readonly aedes: Aedes,
    /** Keyed by aedes' client object, so a connection's state lives exactly as long as the client. */
    private readonly byClient: WeakMap<Client, LiveConnection>,
    private readonly opts: EngineOptions,
  ) {}

  static async start(opts: EngineOptions): Promise<MqttEngine> {
    const byClient = new WeakMap<Client, LiveConnection>();
    const { authorizer, log } = opts;
    // Hooks run only once start() has returned, so the engine is set by then.
    const self: { engine?: MqttEngine } = {};
    const refuse = (c: LiveConnection, reason: RefusalReason, detail: string) => self.engine!.refused(c, reason, detail);
    const settle = (verdict: Promise<Verdict>, then: (v: Verdict) => void) => settleVerdict(log, verdict, then);
    // Answered in the same tick when the policies are in memory; otherwise once they are read.
    const decideThen = (now: Verdict | undefined, later: () => Promise<Verdict>, then: (v: Verdict) => void) =>
      now ? then(now) : settle(later(), then);
    const aedes = await Aedes.createBroker({
      // A backstop only: the engine's own timer (attach) fires first and says why.
      connectTimeout: opts.connectTimeoutMs * 2,
      // Counted over the whole packet, as MQTT 5 §3.2.2.3.6 does (and advertised
      // so in an MQTT 5 CONNACK): exactly maxPacketSize after the fixed header.
      // A 3.1.1 connection is closed, an MQTT 5 one gets DISCONNECT 0x95.
      maximumPacketSize: wireSize(opts.maxPacketSize),
      sessionExpiryIntervalLimit: SESSION_EXPIRY_LIMIT_S,
      pendingSessionsLimit: PENDING_SESSIONS_LIMIT,
      preConnect(client, _packet, done) {
        const c = byClient.get(client);
        if (!c) return done(new Error('connection was not admitted'), false);
        // MQTT 3.1, 3.1.1 and 5 are all served: mqtt-packet refuses any other
        // protocol level as a malformed CONNECT (refused as malformed-packet).
        c.connectArrived();
        done(null, true);
      },
      authenticate(client, _username, _password, done) {
        const c = byClient.get(client);
        if (!c) return done(connackError(NOT_AUTHORIZED, 'connection was not admitted'), false);
        c.clientId = client.id;
        c.policy = new PolicySession(opts.policies, c.identity, client.id);
        settle(authorizer.connect(c.policy, client.id), (v) => {
          if (v.allowed && c.closeReason === undefined) {
            // [MQTT-3.1.4-2] aedes closes the session holding this client id next, before this one is ready.
            const previous = self.engine!.connections.session(client.id);
            if (previous && previous !== c) {
              previous.closeReason ??= 'client-id-takeover';
              // aedes tells an MQTT 5 one with DISCONNECT 0x8E and waits for the write to end.
              self.engine!.cutAfterGrace(previous);
            }
            return done(null, true);
          }
          if (v.allowed) return done(connackError(NOT_AUTHORIZED, `connection closed meanwhile (${c.closeReason})`), false);
          const reason = connectRefusal(v, c);
          refuse(c, reason, v.detail);
          done(connackError(reason === 'policy-unavailable' ? SERVER_UNAVAILABLE : NOT_AUTHORIZED, v.detail), false);
        });
      },
      authorizePublish(client, packet, done) {
        const c = client ? byClient.get(client) : undefined;
        // A will aedes publishes after its client is gone, or (which cannot happen:
        // attach() sets the state before aedes reads a byte) a client without one.
        if (!c?.policy) return done(new Error('connection was not admitted'));
        const will = client!.closed;
        if (will && c.distrusted) return done(new Error('the will of a distrusted connection is not published'));
        const v5 = client!.version === 5;
        const size = packet.payload?.length ?? 0;
        const policy = c.policy;
        const now: Verdict | undefined = size > opts.maxPacketSize
          ? { allowed: false, reason: 'packet-too-large', detail: `payload of ${size} bytes` }
          : authorizer.publishNow(policy, packet.topic);
        decideThen(now, () => authorizer.publish(policy, packet.topic), (v) => {
          if (v.allowed) {
            if (!will) brokerMetrics.messagesIn.inc();
            if (!will && opts.requests?.handles(packet.topic)) {
              // A request is for its handler: never retained, never delivered to a subscriber (authorizeForward).
              packet.retain = false;
              self.engine!.request(client!, c, packet.topic, packet.payload as Buffer, packet.properties?.correlationData);
            }
            return done(null);
          }
          brokerMetrics.publishDenied.inc({ reason: v.reason });
          log.info({ ...fields(c), topic: packet.topic, reason: v.reason, detail: v.detail, will, mqtt: client!.version }, 'publish refused');
          if (will || !v5) {
            // MQTT 3.1.1 has no negative PUBACK: refusing closes the connection [MQTT-3.3.5-2].
            if (!will) c.closeReason ??= v.reason === 'packet-too-large' ? 'packet-too-large' : 'publish-denied';
            return done(new CertfleetError('forbidden', v.detail));
          }
          // MQTT 5 answers PUBACK/PUBREC 0x87 and keeps the connection (§3.4.2.1,
          // §3.5.2.1); the message is the Reason String the device sees, so it
          // names the kind of refusal, never the policies behind it.
          const err = new CertfleetError('forbidden', `not authorized (${v.reason})`);
          keptOpen.add(err);
          done(err);
        });
      },
      authorizeSubscribe(client, subscription, done) {
        const c = byClient.get(client);
        const filter = subscription.topic;
        const answer = (v: Verdict) => {
          if (v.allowed && !c!.subscriptions.has(filter) && c!.subscriptions.size >= opts.maxSubscriptionsPerClient) {
            v = { allowed: false, reason: 'subscription-limit', detail: `already ${c!.subscriptions.size} subscriptions, the limit per client` };
          }
          if (v.allowed) {
            c!.subscriptions.add(filter);
            return done(null, subscription);
          }
          brokerMetrics.subscribeDenied.inc({ reason: v.reason });
          log.info({ ...fields(c), topicFilter: filter, reason: v.reason, detail: v.detail }, 'subscription refused');
          // aedes answers SUBACK 0x80 for a null subscription (MQTT 3.1.1 §3.9.3), 0x87 to an MQTT 5 client (MQTT 5 §3.9.3).
          done(null, null);
        };
        if (!c?.policy) return answer({ allowed: false, reason: 'not-admitted', detail: 'connection was not admitted' });
        const policy = c.policy;
        decideThen(authorizer.subscribeNow(policy, filter), () => authorizer.subscribe(policy, filter), answer);
      },
      authorizeForward(client, packet) {
        // An answer goes to the client that asked, and only there; a request to no one.
        const to = Buffer.isBuffer(packet.payload) ? answerFor.get(packet.payload) : undefined;
        if (to !== undefined) {
          if (to !== client) return null;
          brokerMetrics.messagesOut.inc();
          return packet;
        }
        if (opts.requests?.handles(packet.topic)) return null;
        const c = byClient.get(client);
        if (!c?.policy) return null;
        const v = authorizer.receive(c.policy, packet.topic);
        if (v.allowed) {
          brokerMetrics.messagesOut.inc();
          return packet;
        }
        brokerMetrics.receiveDenied.inc({ reason: v.reason });
        log.debug({ ...fields(c), topic: packet.topic, reason: v.reason, detail: v.detail }, 'delivery refused');
        return null;
      },
    });
    const started = new MqttEngine(aedes, byClient, opts);
    self.engine = started;
    aedes.on('clientReady', (client) => started.sessionStarted(client));
    aedes.on('clientDisconnect', (client) => started.finish(client));
    aedes.on('keepaliveTimeout', (client) => {
      const c = byClient.get(client);
      if (c) c.closeReason ??= 'keepalive-timeout';
    });
    aedes.on('unsubscribe', (filters, client) => {
      const c = byClient.get(client);
      for (const f of filters) c?.subscriptions.delete(f);
    });
    const onError = (client: Client, err: Error) => {
      if (keptOpen.has(err)) return;
      const c = byClient.get(client);
      const tooLarge = packetTooLarge(err);
      if (c && tooLarge) {
        return started.badInput(c, 'packet-too-large', `packet of ${tooLarge.size} bytes with its header (limit ${opts.maxPacketSize} after it)`);
      }
      if (c) c.closeReason ??= (err as NodeJS.ErrnoException).code ? 'connection-lost' : 'protocol-error';
      log.warn({ ...fields(c), err: err.message, reason: c?.closeReason }, 'connection closed on error');
    };
    // A refused MQTT 3.1.1 PUBLISH surfaces here, after aedes has closed the connection.
    aedes.on('clientError', onError);
    aedes.on('connectionError', onError);
    return started;
  }

  /** Hands an admitted connection to the MQTT engine; it owns the socket from now on. */
  attach(socket: Duplex, identity: DeviceIdentity, remote: string): LiveConnection {
    const { log, connectTimeoutMs } = this.opts;
    const c = new LiveConnection(identity, remote);
    // handle() only attaches listeners; bytes already buffered (an early
    // CONNECT) are read on the next tick, after the state is in place.
    const client = this.aedes.handle(socket);
    this.byClient.set(client, c);
    this.clientOf.set(c, client);
    this.connections.add(c);
    c.onClose(() => this.end(client, c));
    const watched = watchParseErrors(client, (err) => this.badInput(c, 'malformed-packet', err.message));
    if (!watched && !this.warnedUnguarded) {
      this.warnedUnguarded = true;
      log.warn({}, 'mqtt-packet parser not as expected: malformed packets are logged as protocol errors');
    }
    // [MQTT-3.1.0-1] the first packet must be CONNECT; a client that sends none is dropped.
    const timer = setTimeout(() => {
      this.refused(c, 'connect-timeout', `no CONNECT within ${connectTimeoutMs} ms`);
      client.close();
    }, connectTimeoutMs);
    timer.unref();
    c.onConnectArrived(() => clearTimeout(timer));
    socket.once('close', () => {
      clearTimeout(timer);
      this.finish(client);
    });
    return c;
  }

  /**
   * Publishes as the platform itself (lifecycle events): no authorizePublish,
   * which aedes runs for clients only, so the `$certfleet/` guard does not
   * apply; each subscriber still gets it only if its policy allows receive
   * (authorizeForward). Retained only when asked (retained renew-required, trust bundles).
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1, retain = false): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Runs a device's request and sends the answer to that client alone (QoS 0:
   * an answer is not queued for a session that went away). An MQTT 5 request's
   * Correlation Data comes back with its answer (MQTT 5 §4.10.2), so a device
   * can match answers to requests; the answer topic stays the contract's.
   */
  request(client: Client, c: LiveConnection, topic: string, payload: Buffer, correlationData?: Buffer): void {
    const { requests, log } = this.opts;
    if (!requests || client.id === null) return;
    const properties = client.version === 5 && correlationData !== undefined ? { correlationData } : undefined;
    const send = (answerTopic: string, body: Buffer) => {
      if (client.closed) return;
      answerFor.set(body, client);
      client.publish({ cmd: 'publish', topic: answerTopic, payload: body, qos: 0, retain: false, dup: false, ...(properties && { properties }) }, () => {});
    };
    void requests.dispatch(c, { topic, payload, clientId: client.id, identity: c.identity }, send, (err) =>
      log.error({ ...fields(c), topic, err: err instanceof Error ? err.message : String(err) }, 'request handler failed'),
    );
  }

  /** Disconnects every MQTT client (MQTT 5 ones with DISCONNECT 0x8B, sent by aedes) and stops the engine. */
  close(): Promise<void> {
    for (const c of this.connections.all()) {
      c.closeReason ??= 'server-shutdown';
      this.cutAfterGrace(c);
    }
    return new Promise((resolve) => this.aedes.close(() => resolve()));
  }

  /**
   * Ends a connection for its closeReason: an MQTT 5 session is told why with
   * DISCONNECT and a reason code (MQTT 5 §3.14.2.1) and its Reason String;
   * MQTT 3.1.1 has no server DISCONNECT, so aedes just closes that one.
   */
  private end(client: Client, c: LiveConnection): void {
    const reason = c.closeReason;
    client.disconnect({ reasonCode: disconnectReasonCode(reason), ...(reason !== undefined && { properties: { reasonString: reason } }) });
    this.cutAfterGrace(c);
  }

  /** Closes the connection after DISCONNECT_GRACE_MS if it is still open then. */
  cutAfterGrace(c: LiveConnection): void {
    const client = this.clientOf.get(c);
    if (!client || client.closed) return;
    setTimeout(() => client.close(), DISCONNECT_GRACE_MS).unref();
  }

  /** Bad bytes: before CONNECT the connection is refused (and counted as such); after it, the session ends for that reason. */
  private badInput(c: LiveConnection, reason: 'packet-too-large' | 'malformed-packet', detail: string): void {
    if (c.connectSeen) c.closeReason ??= reason;
    else this.refused(c, reason, detail);
    this.opts.log.info({ ...fields(c), remote: c.remote, reason, detail }, 'bad MQTT input; closing this connection');
  }

  private refused(c: LiveConnection, reason: RefusalReason, detail: string): void {
    c.closeReason ??= reason;
    this.opts.onRefused(reason, { ...fields(c), remote: c.remote, detail });
  }

  private sessionStarted(client: Client): void {
    const c = this.byClient.get(client);
    if (!c) return;
    c.connectedAt = this.opts.now();
    this.connections.ready(c);
    this.opts.log.info({ ...fields(c), remote: c.remote }, 'device connected');
    this.opts.onSession(c);
  }

  /** Once per connection, on whichever comes first: aedes' clientDisconnect or the socket's close. */
  private finish(client: Client): void {
    const c = this.byClient.get(client);
    if (!c || c.finished) return;
    c.finished = true;
    this.connections.delete(c);
    if (!c.ready) return;
    const reason = c.closeReason ?? (sentDisconnect(client) ? 'client-disconnect' : 'connection-lost');
    this.opts.log.debug({ ...fields(c), reason }, 'device disconnected');
    this.opts.onSessionEnd(c, reason, this.opts.now());
  }
}

/** A connect refusal's reason for logs and metrics, from the verdict. */
function connectRefusal(v: Verdict & { allowed: false }, c: LiveConnection): RefusalReason {
  if (v.reason === 'policy-unavailable') return 'policy-unavailable';
  if (v.reason === 'certificate-not-active') return c.policy?.peek()?.certificateNotActive === 'revoked' ? 'revoked-certificate' : 'inactive-certificate';
  return 'connect-denied';
}

/**
 * Calls `then` with the verdict; a decision that rejects refuses. Nothing
 * thrown here may become an unhandled rejection, which would end the process.
 */
function settleVerdict(log: BrokerLogger, verdict: Promise<Verdict>, then: (v: Verdict) => void): void {
  verdict
    .then(then, (err: unknown) => then({ allowed: false, reason: 'policy-unavailable', detail: err instanceof Error ? err.message : String(err) }))
    .catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'MQTT hook failed'));
}
