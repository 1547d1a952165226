/**
 * The pre-provisioning hook (as AWS IoT's): before a claimed device is
 * provisioned, the template's hook URL is asked whether it may be, and may
 * override parameters. Anything but a clear yes in time is a no: a hook that
 * fails, times out or answers garbage refuses the device (fail closed).
 *
 * POST <url>  { claimCertificateId, certificateId, certificatePem, templateName, parameters, clientId }
 * 2xx         { "allowProvisioning": true, "parameterOverrides"?: { "NAME": "value" } }
 */
import { ProvisioningRefusal } from './rejections.js';

export interface HookRequest {
  readonly claimCertificateId: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly templateName: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly clientId: string;
}

export interface HookVerdict {
  readonly parameterOverrides: Readonly<Record<string, string>>;
}

/** Calls the hook; resolves only on a yes, else rejects with ProvisioningRefusal 'HookRefused'. */
export type HookCaller = (hook: { readonly url: string; readonly timeoutMs: number }, req: HookRequest) => Promise<HookVerdict>;

/** Bytes of an answer read at most: a yes and a few overrides fit many times over. */
const MAX_ANSWER = 64 * 1024;

const refused = (detail: string, cause?: unknown) =>
  new ProvisioningRefusal('HookRefused', `the pre-provisioning hook refused this device: ${detail}`, cause === undefined ? undefined : { cause });

/** Reads a body of at most MAX_ANSWER bytes. */
async function boundedText(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER) {
      await reader.cancel().catch(() => {});
      throw refused(`its answer is larger than ${MAX_ANSWER} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseHookAnswer(text: string): HookVerdict {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw refused('its answer is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw refused('its answer is not a JSON object');
  const b = body as Record<string, unknown>;
  if (b.allowProvisioning !== true) throw refused('allowProvisioning is not true');
  const o = b.parameterOverrides ?? {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw refused('parameterOverrides is not an object');
  for (const [k, v] of Object.entries(o)) if (typeof v !== 'string') throw refused(`parameterOverrides.${k} is not a string`);
  return { parameterOverrides: o as Record<string, string> };
}

/** The hook over HTTP(S) with node's fetch; the deadline covers connect, answer and body. */
export const callHook: HookCaller = async (hook, req) => {
  const signal = AbortSignal.timeout(hook.timeoutMs);
  let text: string;
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(req),
      redirect: 'error',
      signal,
    });
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => {});
      throw refused(`it answered HTTP ${res.status}`);
    }
    text = await boundedText(res);
  } catch (err) {
    if (err instanceof ProvisioningRefusal) throw err;
    if (signal.aborted) throw refused(`no answer within ${hook.timeoutMs} ms`, err);
    throw refused(`it could not be reached (${(err as Error).message})`, err);
  }
  return parseHookAnswer(text);
};
