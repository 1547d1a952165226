/**
 * The mqtt port's TLS listener, apart from the MQTT engine behind it: it asks
 * every client for a certificate, ends handshakes that fail or take too long,
 * and hands each finished TLS connection to the device endpoint `route`
 * picks. A single-tenant node routes everything to one endpoint; a node with
 * tenants routes by the server name the device sent (RFC 6066 §3) and serves
 * that tenant's certificate (`sniCallback`), so one port carries every tenant
 * while their MQTT traffic never meets.
 */
import type { AddressInfo, Socket } from 'node:net';
import { createServer, type SecureContext, type TLSSocket } from 'node:tls';
import type { BrokerLogger } from './engine.js';
import { brokerMetrics } from './metrics.js';

export interface DeviceListenerOptions {
  readonly host?: string;
  readonly port: number;
  /** The default certificate: leaf then intermediates (RFC 8446 §4.4.2). */
  readonly tls: { readonly key: string; readonly cert: string };
  /** Another certificate for some server names (a tenant's); without it every client gets `tls`. */
  readonly sniCallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  readonly handshakeTimeoutMs: number;
  readonly log: BrokerLogger;
  /** Where a finished handshake goes; undefined closes the connection. */
  readonly route: (socket: TLSSocket) => { accept(socket: TLSSocket): void } | undefined;
}

export interface DeviceListener {
  readonly port: number;
  /**
   * Stops listening, waits for `drain` (the endpoints ending their MQTT
   * sessions, so each is recorded as a shutdown and not a lost connection),
   * then closes every connection still open.
   */
  close(drain?: () => Promise<void>): Promise<void>;
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

export async function startDeviceListener(opts: DeviceListenerOptions): Promise<DeviceListener> {
  const { log } = opts;
  // Every TCP connection, from accept to close: close() must end those still
  // in the handshake or in admission too, which aedes does not know about.
  const sockets = new Set<Socket>();
  const server = createServer({
    key: opts.tls.key,
    cert: opts.tls.cert,
    ...(opts.sniCallback ? { SNICallback: opts.sniCallback } : {}),
    // Ask for a client certificate but let admission decide: OpenSSL's trust
    // store knows nothing of which CAs and certificates are active right now,
    // and refusing here would leave no reason to log.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: opts.handshakeTimeoutMs,
  });
  server.on('connection', (raw: Socket) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    const reason = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshake-timeout' : 'tls-handshake-failed';
    brokerMetrics.admissionsRefused.inc({ reason });
    log.info({ reason, remote: remoteOf(socket), err: err.message }, 'TLS handshake failed');
    // With a listener here Node leaves the socket open (a timed-out one too): close it.
    socket.destroy();
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const endpoint = opts.route(socket);
    if (endpoint) endpoint.accept(socket);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: err.message }, 'MQTT listener error'));
  return {
    port: (server.address() as AddressInfo).port,
    close: async (drain) => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await drain?.();
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}
