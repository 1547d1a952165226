/**
 * The node's api and http ports, shared by every tenant. The api port is one
 * TLS listener: the server name a client sends (RFC 6066 §3) picks the
 * tenant, whose certificate is served and whose API gets the connection. The
 * http port is plain HTTP, where there is no SNI: a tenant's documents are
 * under /tenants/NAME/, the default tenant's at the paths DESIGN.md fixes.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import { CertfleetError } from '../errors.js';
import type { TenantStack } from './tenant-stack.js';

export interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/** A port that is taken or not allowed is the operator's to fix: say so plainly instead of a stack trace. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return new CertfleetError('unavailable', `cannot listen on ${host} port ${port} (${code}): choose another port (0 picks a free one)`, { cause: err });
  }
  return err;
}

async function listen(server: Server, port: number, host: string): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on('connection', (raw: Socket) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    throw listenError(err, host, port);
  }
  server.on('error', (err) => console.error(`certfleet: listener on port ${port}: ${err.message}`));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}

export interface ApiListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The default tenant's certificate, served without SNI or for a name no tenant has. */
  readonly tls: { readonly key: string; readonly cert: string };
  readonly sniCallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** The tenant a finished handshake selected; undefined closes the connection. */
  readonly route: (socket: TLSSocket) => Pick<TenantStack, 'acceptApi'> | undefined;
}

export function startApiListener(o: ApiListenerOptions): Promise<Listening> {
  const server = createTlsServer({
    key: o.tls.key,
    cert: o.tls.cert,
    SNICallback: o.sniCallback,
    // A client certificate is asked for, never required: operators use bearer tokens; devices
    // provisioning over HTTPS (EST, claim) present theirs, which the route itself admits.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    handshakeTimeout: 10_000,
  });
  // A failed handshake is the client's; it must not leave the socket open or reach the API.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.on('secureConnection', (socket: TLSSocket) => {
    const stack = o.route(socket);
    if (stack) stack.acceptApi(socket);
    else socket.destroy();
  });
  return listen(server, o.port, o.host);
}

const TENANT_PATH = /^\/tenants\/([a-z][a-z0-9-]{0,30})(\/.*)$/;

export interface PublicListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The default tenant (undefined while the node starts). */
  readonly fallback: () => Pick<TenantStack, 'public'> | undefined;
  readonly tenant: (name: string) => Pick<TenantStack, 'public'> | undefined;
}

function refuse(res: ServerResponse, status: number, code: string, detail: string): void {
  res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'about:blank', title: detail, status, code, detail }));
}

export function startPublicListener(o: PublicListenerOptions): Promise<Listening> {
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const m = TENANT_PATH.exec(req.url ?? '');
    if (m) {
      const stack = o.tenant(m[1]!);
      if (!stack) return refuse(res, 404, 'not-found', `no tenant ${m[1]}`);
      // The tenant's app sees its own paths (/crl/…, /ocsp, /trust-bundle.pem), as the default tenant's does.
      req.url = m[2]!;
      stack.public.server.emit('request', req, res);
      return;
    }
    const stack = o.fallback();
    if (!stack) return refuse(res, 503, 'unavailable', 'the node is starting');
    stack.public.server.emit('request', req, res);
  });
  return listen(server, o.port, o.host);
}
