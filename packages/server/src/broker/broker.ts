/**
 * The device endpoint: MQTT 3.1.1 over mutual TLS (DESIGN.md "Device
 * endpoint"). A node:tls server asks every client for a certificate, runs
 * admission on the chain it sent, and only then hands the socket to the MQTT
 * engine; a refused device never reaches MQTT.
 */
import type { AddressInfo, Socket } from 'node:net';
import { createServer, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import type { Admission } from './admission.js';
import { baselineAuthorization } from './authorization.js';
import { MqttEngine, type BrokerLogger, type EngineHooks } from './engine.js';

export interface BrokerOptions {
  /** Default: every address (IPv6 and IPv4 where the host has both). */
  readonly host?: string;
  /** 0 picks a free port; the bound one is returned. */
  readonly port: number;
  /** PEM; `cert` is the server leaf followed by its intermediates (RFC 8446 §4.4.2), so a device holding only the root can verify it. */
  readonly tls: { readonly key: string; readonly cert: string };
  readonly admission: Pick<Admission, 'admit'>;
  /** Default: the reserved-topic guard of authorization.ts. */
  readonly authorization?: EngineHooks;
  readonly logger?: BrokerLogger;
}

export interface RunningBroker {
  readonly port: number;
  /** Disconnects every client, pending or admitted, and stops listening. */
  close(): Promise<void>;
}

/** Longer than any chain certfleet issues (root, two intermediates, leaf) with room for cross-signs. */
const MAX_PEER_CHAIN = 10;

/** The DER certificates the client sent, leaf first; empty when it sent none. */
function peerChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  // getPeerCertificate(true) links each certificate to its issuer; a
  // self-signed one links to itself, and {} stands for "no certificate".
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw && chain.length < MAX_PEER_CHAIN) {
    chain.push(cert.raw);
    if (cert.issuerCertificate === cert || !cert.issuerCertificate) break;
    cert = cert.issuerCertificate;
  }
  return chain;
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

export async function startBroker(opts: BrokerOptions): Promise<RunningBroker> {
  // stderr by default: stdout carries the operator lines `certfleet serve` prints.
  const log: BrokerLogger = opts.logger ?? pino({ name: 'certfleet-broker' }, pino.destination(2));
  const engine = await MqttEngine.start(opts.authorization ?? baselineAuthorization, log);
  // Every TCP connection, from accept to close: close() must end those still
  // in the handshake or in admission too, which aedes does not know about.
  const sockets = new Set<Socket>();
  let closing: Promise<void> | undefined;

  const server = createServer({
    key: opts.tls.key,
    cert: opts.tls.cert,
    // Ask for a client certificate but let admission decide: OpenSSL's trust
    // store knows nothing of which CAs and certificates are active right now,
    // and refusing here would leave no reason to log.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  });

  server.on('connection', (raw: Socket) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
  });
  server.on('tlsClientError', (err, socket) => log.debug({ remote: remoteOf(socket), err: err.message }, 'TLS handshake failed'));
  server.on('secureConnection', (socket: TLSSocket) => {
    void admit(socket);
  });

  async function admit(socket: TLSSocket): Promise<void> {
    const remote = remoteOf(socket);
    // Until aedes owns the socket, a reset must not become an uncaught 'error'.
    const early = (err: Error) => log.debug({ remote, err: err.message }, 'connection error during admission');
    socket.on('error', early);
    // The socket stays paused: whatever the client sends meanwhile (its
    // CONNECT) waits in the buffer and is read by aedes, or never read at all.
    let result;
    try {
      result = await opts.admission.admit(peerChain(socket));
    } catch (err) {
      log.error({ remote, err: err instanceof Error ? err.message : String(err) }, 'admission failed; connection dropped');
      socket.destroy();
      return;
    }
    if (!result.ok) {
      log.warn({ reason: result.reason, detail: result.detail, remote }, 'device refused');
      socket.destroy();
      return;
    }
    if (closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.off('error', early);
    engine.attach(socket, { certificateId: result.certificateId, thingName: result.thingName });
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  server.on('error', (err) => log.error({ err: err.message }, 'MQTT listener error'));
  const port = (server.address() as AddressInfo).port;

  const close = async () => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    await engine.close();
    for (const s of sockets) s.destroy();
    await stopped;
  };
  return {
    port,
    close: () => (closing ??= close()),
  };
}
