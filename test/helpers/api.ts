/** The operator API of a test server as the integration tests call it: JSON over HTTPS with a bearer token. */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface ApiTarget {
  readonly port: number;
  /** The node's ca.pem: the api port's certificate chains to it. */
  readonly ca: Buffer | string;
  readonly token: string;
}

export type Api = (method: string, path: string, body?: unknown) => Promise<ApiAnswer>;

/** Read at every call, so a test that restarts its server (new port) or changes token keeps one client. */
export function operatorApi(target: () => ApiTarget): Api {
  return (method, path, body) => {
    const { port, ca, token } = target();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        { host: 'localhost', port, path, method, ca, headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  };
}

/** Polls `ok` every 100 ms; fails the test naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); await sleep(100)) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}
