/**
 * How the CLI reaches a running server: URL, token and CA file from
 * `DIR/cli.json` (updated by `serve` with the port it chose), overridden by
 * CERTFLEET_URL / CERTFLEET_TOKEN / CERTFLEET_CA_FILE. With a tenant
 * (`--tenant NAME` or CERTFLEET_TENANT) they come from
 * `DIR/tenants/NAME/cli.json`, which also names the TLS server name that
 * selects the tenant on the shared api port (RFC 6066 §3).
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as plainRequest } from 'node:http';
import { join } from 'node:path';
import { dataDir } from '../config/data-dir.js';
import { CertfleetError } from '../errors.js';

export interface ClientConfig {
  readonly url: string;
  readonly token: string;
  readonly ca?: string;
  /** The server name to send (SNI) and to verify the server certificate against: a tenant's. */
  readonly servername?: string;
}

export function clientConfig(data?: string, tenant: string | undefined = process.env.CERTFLEET_TENANT || undefined): ClientConfig {
  const dir = tenant ? dataDir(join(dataDir(data).root, 'tenants', tenant)) : dataDir(data);
  if (tenant && !existsSync(dir.cliJson)) {
    throw new CertfleetError('not-found', `no tenant ${tenant} here: ${dir.cliJson} is missing (certfleet tenant create writes it)`);
  }
  let file: { url?: string; token?: string; caFile?: string; servername?: string } = {};
  if (existsSync(dir.cliJson)) file = JSON.parse(readFileSync(dir.cliJson, 'utf8')) as typeof file;
  const url = process.env.CERTFLEET_URL ?? file.url;
  const token = process.env.CERTFLEET_TOKEN ?? file.token;
  const caFile = process.env.CERTFLEET_CA_FILE ?? file.caFile;
  if (!url || !token) {
    throw new CertfleetError('invalid-state', `no server to talk to: run \`certfleet init\` (writes ${dir.cliJson}) or set CERTFLEET_URL and CERTFLEET_TOKEN`);
  }
  const servername = process.env.CERTFLEET_SERVERNAME ?? file.servername;
  return { url, token, ...(caFile && existsSync(caFile) ? { ca: readFileSync(caFile, 'utf8') } : {}), ...(servername ? { servername } : {}) };
}

export interface Problem {
  status: number;
  code: string;
  detail: string;
}

/** An answer the server refused: carries its problem document. */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.detail} (${problem.code}, HTTP ${problem.status})`);
  }
}

export async function api<T>(cfg: ClientConfig, method: string, path: string, body?: unknown): Promise<T> {
  const url = new URL(path, cfg.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const send = url.protocol === 'https:' ? request : plainRequest;
  return new Promise<T>((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        ...(cfg.ca ? { ca: cfg.ca } : {}),
        ...(cfg.servername ? { servername: cfg.servername } : {}),
        headers: {
          authorization: `Bearer ${cfg.token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
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
          if ((res.statusCode ?? 500) >= 400) {
            const p = (json ?? {}) as Partial<Problem>;
            reject(new ApiError({ status: res.statusCode ?? 500, code: p.code ?? 'unknown', detail: p.detail ?? text.slice(0, 200) }));
          } else resolve(json as T);
        });
      },
    );
    req.on('error', (err) => reject(new CertfleetError('unavailable', `cannot reach ${url.origin}: ${err.message}`, { cause: err })));
    if (payload) req.write(payload);
    req.end();
  });
}
