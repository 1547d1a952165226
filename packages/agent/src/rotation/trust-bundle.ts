/**
 * Trust bundles pushed by the platform (docs/device-protocol.md
 * "Trust-anchor rollover"): `{ version, roots: [PEM…] }` on
 * `$certfleet/things/{thing}/trust-bundle` (retained). The roots are stored
 * (TrustStore.applyBundle adds first, removes only what the server chain no
 * longer needs), then the version is acknowledged on `…/trust-bundle/ack`.
 * An empty retained message (a cleared bundle) is ignored.
 */
import type { MqttClient } from 'mqtt';
import { AgentError } from '../errors.js';
import { mqttRequest } from '../mqtt/request.js';
import { trustBundleAckTopic } from '../mqtt/topics.js';
import type { RemovalPolicy, TrustBundleReceipt, TrustStore } from '../trust-store.js';

export interface TrustBundle {
  readonly version: string | number;
  readonly roots: readonly string[];
}

export function parseTrustBundle(payload: Buffer): TrustBundle | undefined {
  if (payload.length === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new AgentError('bad-response', 'the trust bundle is not JSON', { cause: err });
  }
  const b = body as { version?: unknown; roots?: unknown };
  if ((typeof b.version !== 'string' && typeof b.version !== 'number') || !Array.isArray(b.roots) || b.roots.length === 0 || !b.roots.every((r) => typeof r === 'string')) {
    throw new AgentError('bad-response', 'a trust bundle is { "version", "roots": [PEM, …] } with at least one root');
  }
  return { version: b.version, roots: b.roots as string[] };
}

export async function applyTrustBundle(
  client: MqttClient,
  thing: string,
  trust: TrustStore,
  bundle: TrustBundle,
  opts: { policy?: RemovalPolicy; timeoutMs?: number } = {},
): Promise<TrustBundleReceipt> {
  return trust.applyBundle(
    bundle.roots.join('\n'),
    async () => {
      await mqttRequest(client, trustBundleAckTopic(thing), { version: bundle.version }, opts.timeoutMs ?? 30_000);
    },
    ...(opts.policy ? [opts.policy] : []),
  );
}
