/**
 * aedes behind one small typed adapter: the rest of certfleet sees admitted
 * devices, topics and promises, never aedes' clients, packets or callbacks.
 * Every socket handed to the engine arrives with the identity admission gave
 * it, so every hook knows which certificate is asking.
 */
import { Aedes, type Client } from 'aedes';
import type { Duplex } from 'node:stream';
import type { DeviceIdentity } from './admission.js';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;
/** pino's Logger fits, and so does `console`. */
export interface BrokerLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

/** An admitted device on one MQTT connection. */
export interface Peer {
  readonly identity: DeviceIdentity;
  /** The MQTT client identifier from CONNECT (§3.1.3.1). */
  readonly clientId: string;
}

/** Authorisation decisions: resolve to allow, reject to refuse. */
export interface EngineHooks {
  /**
   * A PUBLISH from a device, or its will. `peer` is null only for a will that
   * aedes publishes after its client is gone. Refusing closes the connection:
   * MQTT 3.1.1 has no negative PUBACK [MQTT-3.3.5-2].
   */
  authorizePublish(peer: Peer | null, topic: string): Promise<void>;
  /** One topic filter of a SUBSCRIBE. Refusing answers SUBACK 0x80 for it (§3.9.3) and keeps the connection. */
  authorizeSubscribe(peer: Peer, topicFilter: string): Promise<void>;
}

const logFields = (peer: Peer | null) => ({
  clientId: peer?.clientId ?? null,
  certificateId: peer?.identity.certificateId ?? null,
  thingName: peer?.identity.thingName ?? null,
});

export class MqttEngine {
  private constructor(
    private readonly aedes: Aedes,
    /** Keyed by aedes' client object, so an identity lives exactly as long as its connection. */
    private readonly identities: WeakMap<Client, DeviceIdentity>,
  ) {}

  static async start(hooks: EngineHooks, log: BrokerLogger): Promise<MqttEngine> {
    const identities = new WeakMap<Client, DeviceIdentity>();
    const peerOf = (client: Client): Peer | null => {
      const identity = identities.get(client);
      return identity ? { identity, clientId: client.id } : null;
    };
    const aedes = await Aedes.createBroker({
      authorizePublish(client, packet, done) {
        const peer = client ? peerOf(client) : null;
        // A live client without an identity cannot happen (attach() sets it
        // before aedes reads a byte); if it ever does, fail closed.
        if (client && !peer) return done(new Error('connection was not admitted'));
        // Promise.resolve().then(): a hook that throws synchronously refuses too, never crashes aedes.
        Promise.resolve().then(() => hooks.authorizePublish(peer, packet.topic)).then(
          () => done(null),
          (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
        );
      },
      authorizeSubscribe(client, subscription, done) {
        const peer = peerOf(client);
        const refuse = (why: string) => {
          log.info({ ...logFields(peer), topicFilter: subscription.topic, why }, 'subscription refused');
          done(null, null); // aedes answers SUBACK 0x80 for a null subscription
        };
        if (!peer) return refuse('connection was not admitted');
        Promise.resolve().then(() => hooks.authorizeSubscribe(peer, subscription.topic)).then(
          () => done(null, subscription),
          (err: unknown) => refuse(err instanceof Error ? err.message : String(err)),
        );
      },
    });
    const engine = new MqttEngine(aedes, identities);
    aedes.on('clientReady', (client) => log.info(logFields(peerOf(client)), 'device connected'));
    aedes.on('clientDisconnect', (client) => log.debug(logFields(peerOf(client)), 'device disconnected'));
    // A refused PUBLISH surfaces here, after aedes has closed the connection.
    aedes.on('clientError', (client, err) => log.warn({ ...logFields(peerOf(client)), err: err.message }, 'connection closed on error'));
    aedes.on('connectionError', (client, err) => log.debug({ ...logFields(peerOf(client)), err: err.message }, 'connection failed before CONNECT completed'));
    return engine;
  }

  /** Hands an admitted connection to the MQTT engine; it owns the socket from now on. */
  attach(socket: Duplex, identity: DeviceIdentity): void {
    // handle() only attaches listeners; bytes already buffered (an early
    // CONNECT) are read on the next tick, after the identity is in place.
    const client = this.aedes.handle(socket);
    this.identities.set(client, identity);
  }

  /** Disconnects every MQTT client and stops the engine. */
  close(): Promise<void> {
    return new Promise((resolve) => this.aedes.close(() => resolve()));
  }
}
