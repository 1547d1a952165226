/**
 * How the broker follows the registry (DESIGN.md "Revocation": a revoked
 * device is disconnected at once) and tells the rest of the node who is
 * connected. Only events of the in-process bus; across nodes the same bus is
 * fed from Redis.
 */
import { performance } from 'node:perf_hooks';
import type { EventBus } from '../events/index.js';
import type { Admission } from './admission.js';
import type { MqttEngine } from './engine.js';
import type { LiveConnection } from './live-connections.js';
import { refreshInBackground } from './policy-session.js';

/**
 * CAs deactivated lately, by id, with the (monotonic) time of the change: a
 * connection whose admission began before the change and that reaches the
 * engine after it was not there to be disconnected, so it is refused instead.
 */
export class CaChanges {
  readonly #disabledAt = new Map<string, number>();

  constructor(private readonly keepMs: number) {}

  disabled(caId: string): void {
    const now = performance.now();
    for (const [id, at] of this.#disabledAt) if (now - at > this.keepMs) this.#disabledAt.delete(id);
    this.#disabledAt.set(caId, now);
  }

  enabled(caId: string): void {
    this.#disabledAt.delete(caId);
  }

  /** The first of `caIds` disabled since `since` (performance.now() time), if any. */
  disabledSince(caIds: readonly string[], since: number): string | undefined {
    return caIds.find((id) => (this.#disabledAt.get(id) ?? -Infinity) >= since);
  }
}

/** Closes the connections matched; returns how many. */
export function disconnect(engine: MqttEngine, match: (c: LiveConnection) => boolean, reason: string): number {
  const hit = engine.connections.where(match);
  for (const c of hit) c.close(reason, { distrusted: true });
  return hit.length;
}

/** Marks the policies of the matched connections stale; those that can receive reload now, the rest on their next check. */
function markStale(engine: MqttEngine, match: (c: LiveConnection) => boolean): void {
  const hit = engine.connections.where((c) => c.policy !== undefined && match(c));
  for (const c of hit) c.policy!.markStale();
  void refreshInBackground(hit.filter((c) => c.subscriptions.size > 0).map((c) => c.policy!));
}

/** Subscribes the broker to the registry's events; returns the function that unsubscribes. */
export function followRegistry(bus: EventBus, engine: MqttEngine, admission: Pick<Admission, 'invalidate'>, cas: CaChanges): () => void {
  const offs = [
    bus.on('certificate.status-changed', (e) => {
      if (e.to !== 'active') disconnect(engine, (c) => c.identity.certificateId === e.certificateId, `certificate-${e.to}`);
    }),
    bus.on('ca.status-changed', (e) => {
      admission.invalidate();
      if (e.to === 'active') return cas.enabled(e.caId);
      cas.disabled(e.caId);
      // A path through a CA, or through any CA below it, ends here. A CA
      // registered twice (cross-signed) may still admit the device: it
      // reconnects and is admitted again through the other registration.
      disconnect(engine, (c) => c.identity.caIds.includes(e.caId), `ca-${e.to}`);
    }),
    // Attaching or detaching a policy, or changing its default version, can
    // concern any connection (groups, inherited attachments): all reload.
    bus.on('policy.changed', () => markStale(engine, () => true)),
    bus.on('thing.changed', (e) =>
      markStale(engine, (c) => c.thingName === e.thingName || (e.certificateId !== undefined && c.identity.certificateId === e.certificateId)),
    ),
  ];
  return () => offs.forEach((off) => off());
}

/** Tells the bus a device connected or disconnected. */
export function announce(bus: EventBus | undefined, c: LiveConnection, reason?: string): void {
  if (!bus) return;
  const device = { thingName: c.thingName, certificateId: c.identity.certificateId, clientId: c.clientId ?? '', remote: c.remote };
  if (reason === undefined) bus.emit('thing.connected', device);
  else bus.emit('thing.disconnected', { ...device, reason });
}
