/**
 * An EST client (RFC 7030) for the device: /cacerts, /simpleenroll with an
 * HTTP Basic one-time secret or a client certificate (§3.2.3), and
 * /simplereenroll with the current certificate (§4.2.2).
 *
 * Requests are application/pkcs10, base64 (§4.2.1); answers are
 * application/pkcs7-mime certs-only, base64 (§4.1.3, §4.2.3). A 202 with
 * Retry-After means the request is queued for approval: the client waits
 * and sends the same request again (§4.2.3), up to a budget, then reports
 * 'pending' with the wait the server asked for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodePem, type Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { rejectionOf, verifiedRequest, type ClientCredential, type VerifiedResponse } from '../http/verified-request.js';
import { decodeBase64Body, parseCertsOnlyPkcs7 } from './pkcs7.js';

export interface EstClientOptions {
  /** Base URL: https://host:port (the /.well-known/est/ path is added) or the full …/.well-known/est[/label]. */
  readonly url: string;
  /** Checks the server's chain (leaf first, PEM): e.g. TimeFloor.validateServerChain over the trust store. */
  readonly verifyServer?: (chainPems: string[]) => void;
  /** Roots for Node's own check when verifyServer is absent. */
  readonly ca?: string;
  readonly timeoutMs?: number;
  /** How long in total to keep answering 202s before giving up with 'pending' (default 5 minutes). */
  readonly maxPendingMs?: number;
  /** Waits longer than this per 202 are cut to it (default 60 s). */
  readonly maxRetryAfterMs?: number;
  /** Sees the server's Date header of each answer (a device without a clock raises its time floor from it). */
  readonly onServerDate?: (date: Date) => void;
  readonly sleep?: (ms: number) => Promise<unknown>;
}

export type EstAuth = { readonly username: string; readonly password: string } | ClientCredential;

/** §4.2.3 / RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export class EstClient {
  private readonly base: string;

  constructor(private readonly opts: EstClientOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== 'https:') throw new AgentError('bad-input', `EST needs an https:// URL (RFC 7030 §3.3), got ${opts.url}`);
    this.base = u.pathname.includes('/.well-known/est') ? u.href.replace(/\/$/, '') : `${u.origin}/.well-known/est`;
  }

  /** §4.1: the CA certificates, issuing CA first as certfleet sends them. */
  async cacerts(): Promise<Certificate[]> {
    const res = await this.send('cacerts', 'GET', {});
    return this.certificates('cacerts', res);
  }

  /** §4.2.1: the first certificate for the key of `csrPem`; [issued, …any chain the server added]. */
  async simpleenroll(csrPem: string, auth: EstAuth): Promise<Certificate[]> {
    return this.enroll('simpleenroll', csrPem, auth);
  }

  /** §4.2.2: the next certificate, authenticated by the current one as TLS client certificate. */
  async simplereenroll(csrPem: string, current: ClientCredential): Promise<Certificate[]> {
    return this.enroll('simplereenroll', csrPem, current);
  }

  private async enroll(op: 'simpleenroll' | 'simplereenroll', csrPem: string, auth: EstAuth): Promise<Certificate[]> {
    let der: Buffer;
    try {
      der = decodePem(csrPem, 'CERTIFICATE REQUEST');
    } catch (err) {
      throw new AgentError('bad-input', `not a PEM certificate request: ${(err as Error).message}`, { cause: err });
    }
    const body = `${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n`;
    const headers: Record<string, string> = { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64', accept: 'application/pkcs7-mime' };
    let credential: ClientCredential = {};
    if ('username' in auth) {
      // RFC 7617: user-id and password joined by a colon, so the user-id cannot hold one.
      if (auth.username.includes(':')) throw new AgentError('bad-input', 'an HTTP Basic username cannot contain ":"');
      headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
    } else credential = auth;
    const deadline = Date.now() + (this.opts.maxPendingMs ?? 300_000);
    for (;;) {
      const res = await this.send(op, 'POST', { headers, body, ...credential });
      if (res.status !== 202) return this.certificates(op, res);
      const wait = retryAfterMs(header(res, 'retry-after')) ?? 30_000;
      if (Date.now() + wait > deadline) {
        throw new AgentError('pending', `${op}: the request is pending approval; the server asks to retry in ${Math.round(wait / 1000)} s`);
      }
      await (this.opts.sleep ?? sleep)(Math.min(wait, this.opts.maxRetryAfterMs ?? 60_000));
    }
  }

  private async send(op: string, method: 'GET' | 'POST', extra: Partial<Parameters<typeof verifiedRequest>[0]>): Promise<VerifiedResponse> {
    const res = await verifiedRequest({
      url: `${this.base}/${op}`,
      method,
      ...(this.opts.verifyServer ? { verifyServer: this.opts.verifyServer } : {}),
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
      ...extra,
    });
    const date = header(res, 'date');
    if (date && this.opts.onServerDate && Number.isFinite(Date.parse(date))) this.opts.onServerDate(new Date(date));
    return res;
  }

  private certificates(op: string, res: VerifiedResponse): Certificate[] {
    if (res.status !== 200) throw rejectionOf(`EST ${op}`, res);
    const type = (header(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/pkcs7-mime') throw new AgentError('bad-response', `EST ${op} answered ${type || 'no content type'}, not application/pkcs7-mime`);
    const certs = parseCertsOnlyPkcs7(decodeBase64Body(res.body));
    if (certs.length === 0) throw new AgentError('bad-response', `EST ${op} answered no certificate`);
    return certs;
  }
}

const header = (res: VerifiedResponse, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
