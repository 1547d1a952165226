/**
 * What an admitted device may publish and subscribe to. For now only the
 * platform's reserved topics are guarded; per-certificate policies (with
 * variables such as the thing name) replace the permissive parts later.
 */
import { CertfleetError } from '../errors.js';
import type { EngineHooks } from './engine.js';

/**
 * Topics only the platform publishes to (DESIGN.md: devices may never publish
 * to `$certfleet/` topics other than their own request topics). `$SYS/` is
 * aedes' own: replacing its default authorizePublish drops the guard it keeps
 * there (aedes #597), so it is restated here.
 */
export const RESERVED_PREFIXES = ['$certfleet/', '$SYS/'] as const;

export const baselineAuthorization: EngineHooks = {
  async authorizePublish(_peer, topic) {
    const prefix = RESERVED_PREFIXES.find((p) => topic.startsWith(p));
    if (prefix) throw new CertfleetError('forbidden', `devices may not publish to ${prefix} topics (${topic})`);
  },
  async authorizeSubscribe() {
    // Subscribing is open until policies are attached to certificates. A `#`
    // filter still never matches `$…` topics [MQTT-4.7.2-1].
  },
};
