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
import { guardPackets, sentDisconnect } from './aedes-internals.js';
import type { Authorizer, Verdict } from './authorization.js';
import { LiveConnection, LiveConnections, type DisconnectReason, type RefusalReason } from './live-connections.js';
import { brokerMetrics } from './metrics.js';
import { PolicySession, type PolicyLoader } from './policy-session.js';
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

/** aedes' CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
const SERVER_UNAVAILABLE = 3;
const NOT_AUTHORIZED = 5;

/**
 * Answers to device requests, by payload buffer, with the one client each is
 * for: aedes hands authorizeForward a copy of the packet but the same
 * payload buffer, so this is how a delivery is recognised as an answer.
 */
const answerFor = new WeakMap<Buffer, Client>();

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
      preConnect(client, packet, done) {
        const c = byClient.get(client);
        if (!c) return done(new Error('connection was not admitted'), false);
        c.connectArrived();
        // aedes answers CONNACK 0x01 (unacceptable protocol level) [MQTT-3.1.2-2]; an
        // MQTT 5 client reads it as 0x84 Unsupported Protocol Version (MQTT 5 §3.1.2.2).
        if (packet.protocolVersion !== 3 && packet.protocolVersion !== 4) {
          refuse(c, 'unsupported-protocol-version', `MQTT protocol level ${packet.protocolVersion}: this endpoint speaks MQTT 3.1.1 (and 3.1)`);
        }
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
            if (previous && previous !== c) previous.closeReason ??= 'client-id-takeover';
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
              self.engine!.request(client!, c, packet.topic, packet.payload as Buffer);
            }
            return done(null);
          }
          brokerMetrics.publishDenied.inc({ reason: v.reason });
          if (!will) c.closeReason ??= v.reason === 'packet-too-large' ? 'packet-too-large' : 'publish-denied';
          log.info({ ...fields(c), topic: packet.topic, reason: v.reason, detail: v.detail, will }, 'publish refused');
          // MQTT 3.1.1 has no negative PUBACK: refusing closes the connection [MQTT-3.3.5-2].
          done(new CertfleetError('forbidden', v.detail));
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
          done(null, null); // aedes answers SUBACK 0x80 for a null subscription (§3.9.3)
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
      const c = byClient.get(client);
      if (c) c.closeReason ??= (err as NodeJS.ErrnoException).code ? 'connection-lost' : 'protocol-error';
      log.warn({ ...fields(c), err: err.message, reason: c?.closeReason }, 'connection closed on error');
    };
    // A refused PUBLISH surfaces here, after aedes has closed the connection.
    aedes.on('clientError', onError);
    aedes.on('connectionError', onError);
    return started;
  }

  /** Hands an admitted connection to the MQTT engine; it owns the socket from now on. */
  attach(socket: Duplex, identity: DeviceIdentity, remote: string): LiveConnection {
    const { log, maxPacketSize, connectTimeoutMs } = this.opts;
    const c = new LiveConnection(identity, remote);
    // handle() only attaches listeners; bytes already buffered (an early
    // CONNECT) are read on the next tick, after the state is in place.
    const client = this.aedes.handle(socket);
    this.byClient.set(client, c);
    this.connections.add(c);
    c.onClose(() => client.close());
    // Before CONNECT the connection is refused (and counted as such); after it, the session ends for that reason.
    const badInput = (reason: 'packet-too-large' | 'malformed-packet', detail: string) => {
      if (c.connectSeen) c.closeReason ??= reason;
      else this.refused(c, reason, detail);
      log.info({ ...fields(c), remote, reason, detail }, 'bad MQTT input; closing this connection');
    };
    const guarded = guardPackets(client, maxPacketSize, {
      tooLarge: (size, cmd) => badInput('packet-too-large', `${cmd ?? 'packet'} of ${size} bytes (limit ${maxPacketSize})`),
      malformed: (err) => badInput('malformed-packet', err.message),
    });
    if (!guarded && !this.warnedUnguarded) {
      this.warnedUnguarded = true;
      log.warn({}, 'mqtt-packet parser not as expected: the packet size is checked on PUBLISH payloads only');
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
   * (authorizeForward). Never retained.
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Runs a device's request and sends the answer to that client alone (QoS 0: an answer is not queued for a session that went away). */
  request(client: Client, c: LiveConnection, topic: string, payload: Buffer): void {
    const { requests, log } = this.opts;
    if (!requests || client.id === null) return;
    const send = (answerTopic: string, body: Buffer) => {
      if (client.closed) return;
      answerFor.set(body, client);
      client.publish({ cmd: 'publish', topic: answerTopic, payload: body, qos: 0, retain: false, dup: false }, () => {});
    };
    void requests.dispatch(c, { topic, payload, clientId: client.id, identity: c.identity }, send, (err) =>
      log.error({ ...fields(c), topic, err: err instanceof Error ? err.message : String(err) }, 'request handler failed'),
    );
  }

  /** Disconnects every MQTT client and stops the engine. */
  close(): Promise<void> {
    for (const c of this.connections.all()) c.closeReason ??= 'server-shutdown';
    return new Promise((resolve) => this.aedes.close(() => resolve()));
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
