/**
 * What the long-running agent needs beyond its slots and trust store: where
 * the platform is, which thing it is, how to renew. Kept in DIR/agent.json
 * (written atomically and durably), so after the first start — or a kill —
 * `certfleet-agent run --data DIR` alone brings the device back; flags given
 * later replace the saved values.
 */
import { join } from 'node:path';
import { readIfExists, writeFileDurable } from '../durable-fs.js';
import { AgentError } from '../errors.js';
import type { RenewalThreshold } from '../renewal.js';

export interface ClaimConfig {
  /** Files under DIR/claim/ once copied there (the credential must survive the source going away). */
  readonly certFile: string;
  readonly keyFile: string;
  readonly template: string;
  /** Template parameters, e.g. { SerialNumber }. */
  readonly parameters: Readonly<Record<string, string>>;
}

export interface AgentConfig {
  /** mqtts://host:port of the platform's device endpoint. */
  readonly mqtt?: string;
  /** https://host:port of the api port: renewal after expiry, and trusted time from its Date header. */
  readonly api?: string;
  /** The thing this device is; default: the CN of the current certificate. */
  readonly thing?: string;
  readonly renewVia?: 'mqtt' | 'est';
  /** EST server for renewVia 'est' (default: api). */
  readonly est?: string;
  readonly threshold?: RenewalThreshold;
  /** 0..1, spreads a fleet's renewals (RenewalTiming.jitter). */
  readonly jitter?: number;
  /** Capped backoff of renewal retries, ms. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Capped backoff of reconnections, ms. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Deadline of each connection and request, ms. */
  readonly timeoutMs?: number;
  /** A claim credential: provisions a device without identity, and is the fallback when renewal after expiry is refused. */
  readonly claim?: ClaimConfig;
}

export const configFile = (dir: string) => join(dir, 'agent.json');

export async function readConfig(dir: string): Promise<AgentConfig> {
  const text = await readIfExists(configFile(dir));
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as AgentConfig;
  } catch (err) {
    throw new AgentError('bad-input', `${configFile(dir)} is not a JSON object: fix or remove it`, { cause: err });
  }
}

/** Saved values overlaid by `changes` (undefined leaves a value as it was), written durably. */
export async function updateConfig(dir: string, changes: AgentConfig): Promise<AgentConfig> {
  const merged: Record<string, unknown> = { ...(await readConfig(dir)) };
  for (const [k, v] of Object.entries(changes)) if (v !== undefined) merged[k] = v;
  const config = merged as AgentConfig;
  checkConfig(config);
  await writeFileDurable(configFile(dir), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, overwrite: true });
  return config;
}

export function checkConfig(c: AgentConfig): void {
  const url = (v: string | undefined, protocols: string[], what: string) => {
    if (v === undefined) return;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new AgentError('bad-input', `${what} ${JSON.stringify(v)} is not a URL`);
    }
    if (!protocols.includes(u.protocol)) throw new AgentError('bad-input', `${what} must be ${protocols.map((p) => `${p}//`).join(' or ')}, got ${v}`);
  };
  url(c.mqtt, ['mqtts:', 'mqtt:'], 'the MQTT URL');
  url(c.api, ['https:'], 'the api URL');
  url(c.est, ['https:'], 'the EST URL');
  if (c.renewVia !== undefined && c.renewVia !== 'mqtt' && c.renewVia !== 'est') throw new AgentError('bad-input', `renewal goes via mqtt or est, not ${String(c.renewVia)}`);
  if (c.renewVia === 'est' && !c.est && !c.api) throw new AgentError('bad-input', 'renewal via EST needs --est URL');
  if (c.threshold && 'fraction' in c.threshold && !(c.threshold.fraction > 0 && c.threshold.fraction < 1)) {
    throw new AgentError('bad-input', `--renew-fraction must be between 0 and 1, got ${c.threshold.fraction}`);
  }
  if (c.jitter !== undefined && !(c.jitter >= 0 && c.jitter <= 1)) throw new AgentError('bad-input', `--jitter must be within 0..1, got ${c.jitter}`);
}
