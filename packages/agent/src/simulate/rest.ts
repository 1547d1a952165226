/**
 * The few REST calls the simulator makes to set itself up (a policy, a
 * template, a claim credential), over plain node:https: the agent imports
 * nothing of the server's (DESIGN.md boundaries), and needs nothing more.
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { AgentError } from '../errors.js';

export interface ServerAccess {
  /** https://host:port of the api port. */
  readonly url: string;
  readonly token: string;
  /** PEM of the root the server's TLS certificate chains to. */
  readonly ca?: string;
}

/** An answer outside 2xx: its status and the problem's `code`, if any (RFC 9457). */
export class HttpError extends AgentError {
  constructor(
    readonly status: number,
    readonly problemCode: string | undefined,
    message: string,
  ) {
    super('rejected', message);
  }
}

export function restCall<T>(server: ServerAccess, method: string, path: string, body?: unknown): Promise<T> {
  const url = new URL(path, server.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<T>((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        ...(server.ca ? { ca: server.ca } : {}),
        headers: {
          authorization: `Bearer ${server.token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(json as T);
          const p = (json ?? {}) as { code?: string; detail?: string };
          reject(new HttpError(status, p.code, `${method} ${url.pathname}: HTTP ${status} ${p.code ?? ''} ${p.detail ?? text.slice(0, 200)}`.trim()));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => reject(new AgentError('unreachable', `cannot reach ${url.origin}: ${err.message}`, { cause: err })));
    if (payload) req.write(payload);
    req.end();
  });
}

/** GET that answers undefined for a 404. */
export async function restFind<T>(server: ServerAccess, path: string): Promise<T | undefined> {
  try {
    return await restCall<T>(server, 'GET', path);
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return undefined;
    throw err;
  }
}
