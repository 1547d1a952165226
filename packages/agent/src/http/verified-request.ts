/**
 * One HTTPS exchange in which the device checks the server before it sends
 * anything: the TLS session is made first, the server's chain is validated
 * (by `verifyServer`, typically TimeFloor.validateServerChain over the
 * trust store, since a device without a clock cannot let Node judge
 * validity against 1970) and its name checked, and only then does the
 * request go out — so an enrollment secret or a CSR never reaches a server
 * the device has not recognised.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { checkServerIdentity, connect, type SecureContext, type TLSSocket } from 'node:tls';
import { AgentError } from '../errors.js';
import { peerChain } from '../peer-chain.js';

export interface ClientCredential {
  readonly certificatePem?: string;
  readonly keyPem?: string;
  /** A context holding a key that is not a PEM (a PKCS#11 token). */
  readonly secureContext?: SecureContext;
}

export interface VerifiedRequest extends ClientCredential {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  /** Checks the server's chain (PEM, leaf first); throws to refuse. Without it Node checks against `ca`. */
  readonly verifyServer?: (chainPems: string[]) => void;
  readonly ca?: string;
  readonly timeoutMs?: number;
  /** Largest answer taken (1 MiB). */
  readonly maxBytes?: number;
}

export interface VerifiedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

async function verifiedSocket(url: URL, req: VerifiedRequest, timeoutMs: number): Promise<TLSSocket> {
  const servername = url.hostname.replace(/^\[|\]$/g, '');
  const socket = connect({
    host: servername,
    port: Number(url.port || 443),
    servername,
    ...(req.secureContext ? { secureContext: req.secureContext } : {}),
    ...(req.certificatePem ? { cert: req.certificatePem } : {}),
    ...(req.keyPem ? { key: req.keyPem } : {}),
    ...(req.ca ? { ca: req.ca } : {}),
    rejectUnauthorized: req.verifyServer === undefined,
  });
  return new Promise<TLSSocket>((resolve, reject) => {
    const timer = setTimeout(() => socket.destroy(new AgentError('timeout', `no TLS session with ${url.host} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof AgentError ? err : new AgentError('unreachable', `cannot reach ${url.origin}: ${err.message}`, { cause: err }));
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      try {
        const { pems, leaf } = peerChain(socket);
        req.verifyServer?.(pems);
        const nameError = checkServerIdentity(servername, leaf);
        if (nameError) throw new AgentError('chain-invalid', `server certificate is not for ${servername}: ${nameError.message}`);
        resolve(socket);
      } catch (err) {
        socket.destroy();
        reject(err instanceof AgentError ? err : new AgentError('chain-invalid', (err as Error).message, { cause: err }));
      }
    });
  });
}

export async function verifiedRequest(req: VerifiedRequest): Promise<VerifiedResponse> {
  const url = new URL(req.url);
  if (url.protocol !== 'https:') throw new AgentError('bad-input', `${req.url} is not an https:// URL`);
  const timeoutMs = req.timeoutMs ?? 30_000;
  const maxBytes = req.maxBytes ?? 1 << 20;
  const socket = await verifiedSocket(url, req, timeoutMs);
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  return new Promise<VerifiedResponse>((resolve, reject) => {
    const r = request(
      {
        method: req.method,
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, ...(req.headers ?? {}), ...(body ? { 'content-length': String(body.length) } : {}) },
        createConnection: () => socket,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) res.destroy(new AgentError('bad-response', `the answer from ${url.origin} exceeds ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          socket.end();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    r.on('timeout', () => r.destroy(new AgentError('timeout', `no answer from ${url.origin} within ${timeoutMs} ms`)));
    r.on('error', (err) => reject(err instanceof AgentError ? err : new AgentError('unreachable', `${req.method} ${url.href}: ${err.message}`, { cause: err })));
    r.end(body);
  });
}

/** RFC 9457 problem details (or anything else) from a non-2xx answer, as the agent's rejection. */
export function rejectionOf(what: string, res: VerifiedResponse): AgentError {
  let problem: { code?: unknown; detail?: unknown; title?: unknown } = {};
  try {
    problem = JSON.parse(res.body) as typeof problem;
  } catch {
    // Not JSON: the text itself is the message.
  }
  const errorCode = typeof problem.code === 'string' ? problem.code : `http-${res.status}`;
  const errorMessage = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : res.body.slice(0, 200);
  return new AgentError('rejected', `${what}: HTTP ${res.status} ${errorCode}: ${errorMessage}`, { rejection: { statusCode: res.status, errorCode, errorMessage } });
}
