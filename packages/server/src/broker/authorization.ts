/**
 * What an admitted device may do: every connect, publish, subscribe and
 * receive is decided by the policies attached to its certificate and its
 * thing's groups (DESIGN.md "Device endpoint"), behind a guard of the
 * platform's reserved topics that no policy can lift.
 */
import type { PolicyAction, PolicyDecision } from '../registry/policy/index.js';
import { topicMatchesFilter } from '../registry/policy/index.js';
import { decide, type LoadedPolicies, type PolicySession } from './policy-session.js';
import { ANSWERS, claimRequestTopics, THING_REQUEST_SUFFIXES, thingOfTopic, thingTopicSuffix } from './requests.js';

/**
 * Topics only the platform publishes to (DESIGN.md: devices may never publish
 * to `$certfleet/` topics other than their own request topics). `$SYS/` is
 * aedes' own: replacing its default authorizePublish drops the guard it keeps
 * there (aedes #597), so it is restated here.
 */
export const RESERVED_PREFIXES = ['$certfleet/', '$SYS/'] as const;

/**
 * The allow-list of `$certfleet/` request topics a device may publish to, as
 * topic filters, besides those of the request handlers the broker is given
 * (fleet provisioning's `$certfleet/certificates/create-from-csr/json`, …:
 * requests.ts): a topic nobody answers is not opened. A listed topic must
 * still be allowed by the device's policies, or by the claim rules below.
 */
export const DEVICE_REQUEST_TOPICS: readonly string[] = [];

export type DenialReason =
  | 'reserved-topic'
  | 'policy'
  | 'policy-reloading'
  | 'policy-unavailable'
  | 'certificate-not-active'
  | 'subscription-limit'
  | 'packet-too-large'
  | 'not-admitted'
  | 'claim'
  | 'other-thing';

export type Verdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: DenialReason; readonly detail: string };

const ALLOWED: Verdict = Object.freeze({ allowed: true });
const deny = (reason: DenialReason, detail: string): Verdict => ({ allowed: false, reason, detail });

/** The reserved-topic guard alone: a refusal, or undefined when the topic is not reserved (or is an allowed request topic). */
export function reservedTopicRefusal(topic: string, requestTopics: readonly string[] = DEVICE_REQUEST_TOPICS): Verdict | undefined {
  const prefix = RESERVED_PREFIXES.find((p) => topic.startsWith(p));
  if (!prefix) return undefined;
  if (prefix === '$certfleet/' && requestTopics.some((f) => topicMatchesFilter(topic, f))) return undefined;
  return deny('reserved-topic', `devices may not publish to ${prefix} topics (${topic})`);
}

/**
 * A claim credential (fleet provisioning by claim) is good for one thing
 * only, whatever policies say: asking for its device certificate and
 * provisioning with its own template. It may publish to those request
 * topics, subscribe to their answers, and receive nothing but the answers
 * addressed to it (which the engine delivers to it directly).
 */
function claimVerdict(template: string, action: 'publish' | 'subscribe' | 'receive', resource: string): Verdict {
  const requests = claimRequestTopics(template);
  const ok =
    action === 'publish'
      ? requests.includes(resource)
      : action === 'subscribe' && requests.some((r) => resource === `${r}/+` || ANSWERS.some((a) => resource === `${r}/${a}`));
  return ok ? ALLOWED : deny('claim', `a claim certificate (template ${template}) may not ${action} ${JSON.stringify(resource)}`);
}

function explain(loaded: LoadedPolicies, action: PolicyAction, resource: string, d: PolicyDecision): Verdict {
  if (d.allowed) return ALLOWED;
  const what = `${action} ${JSON.stringify(resource)}`;
  if (d.reason === 'explicit-deny' && d.statement) {
    const name = loaded.names[d.statement.policyIndex] ?? '?';
    return deny('policy', `${what} denied by policy ${name}, statement ${d.statement.statementIndex}`);
  }
  const attached = loaded.names.length === 0 ? 'no policy is attached' : `no statement of ${loaded.names.join(', ')} allows it`;
  return deny('policy', `${what} not allowed: ${attached}`);
}

/**
 * `$certfleet/things/{thing}/…` (docs/device-protocol.md): a device may
 * subscribe to and receive anything under its own thing, and publish that
 * thing's request topics, without a policy; another thing's is refused
 * whatever the policies say. Undefined when the rule does not decide (not
 * such a topic, or a subscription with a wildcard at the thing level: those
 * are left to the policies, and receive() still refuses every other thing's
 * message one by one).
 */
function ownThingVerdict(loaded: LoadedPolicies, action: 'publish' | 'subscribe' | 'receive', resource: string): Verdict | undefined {
  const thing = thingOfTopic(resource);
  if (thing === undefined) return undefined;
  if (action === 'subscribe' && (thing === '+' || thing === '#')) return undefined;
  const own = loaded.context.thingName;
  if (own === undefined || thing !== own) {
    return deny('other-thing', `${action} ${JSON.stringify(resource)}: a device may use $certfleet/things/ topics of its own thing only (${own ?? 'none'})`);
  }
  if (loaded.certificateNotActive !== null) return deny('certificate-not-active', `the certificate is ${loaded.certificateNotActive}`);
  if (action !== 'publish') return ALLOWED;
  // Its own request topics only; the reserved-topic guard has already refused those no handler answers.
  return (THING_REQUEST_SUFFIXES as readonly string[]).includes(thingTopicSuffix(resource)) ? ALLOWED : undefined;
}

/** The claim rules for a claim credential, the own-thing rule, then the policies for any other certificate. */
function decideFor(loaded: LoadedPolicies, action: 'publish' | 'subscribe' | 'receive', resource: string): Verdict {
  if (loaded.claimTemplate !== null) return claimVerdict(loaded.claimTemplate, action, resource);
  const own = ownThingVerdict(loaded, action, resource);
  if (own) return own;
  return explain(loaded, action, resource, decide(loaded, action, resource));
}

export class Authorizer {
  constructor(private readonly requestTopics: readonly string[] = DEVICE_REQUEST_TOPICS) {}

  /** CONNECT with this client id (MQTT 3.1.3.1): loads the policies, so later checks find them in memory. */
  async connect(session: PolicySession, clientId: string): Promise<Verdict> {
    return this.withPolicies(session, (loaded) => {
      if (loaded.certificateNotActive !== null) {
        return deny('certificate-not-active', `the certificate is ${loaded.certificateNotActive}`);
      }
      // Many devices share one claim credential, each with its own client id.
      if (loaded.claimTemplate !== null) return ALLOWED;
      return explain(loaded, 'connect', clientId, decide(loaded, 'connect', clientId));
    });
  }

  /**
   * The answer now when it needs no read (the hot path: policies loaded, or
   * a reserved topic); undefined when publish() must be awaited.
   */
  publishNow(session: PolicySession, topic: string): Verdict | undefined {
    const reserved = reservedTopicRefusal(topic, this.requestTopics);
    if (reserved) return reserved;
    const loaded = session.loaded;
    return loaded && decideFor(loaded, 'publish', topic);
  }

  async publish(session: PolicySession, topic: string): Promise<Verdict> {
    return this.publishNow(session, topic) ?? this.withPolicies(session, (loaded) => decideFor(loaded, 'publish', topic));
  }

  /** As publishNow(), for one topic filter of a SUBSCRIBE. */
  subscribeNow(session: PolicySession, filter: string): Verdict | undefined {
    // $SYS/ names every client of the broker: not for devices, whatever a policy says.
    if (filter.startsWith('$SYS/') || filter === '$SYS') return deny('reserved-topic', `devices may not subscribe to $SYS/ (${filter})`);
    const loaded = session.loaded;
    return loaded && decideFor(loaded, 'subscribe', filter);
  }

  async subscribe(session: PolicySession, filter: string): Promise<Verdict> {
    return this.subscribeNow(session, filter) ?? this.withPolicies(session, (loaded) => decideFor(loaded, 'subscribe', filter));
  }

  /**
   * Delivery to a subscriber is decided synchronously (aedes' authorizeForward
   * cannot wait). While the session's policies are being reloaded after a
   * change the answer is no: a message the new policies might deny is never
   * delivered on the strength of the old ones (the reload is started now).
   */
  receive(session: PolicySession, topic: string): Verdict {
    if (topic.startsWith('$SYS/')) return deny('reserved-topic', `$SYS/ topics are not delivered to devices (${topic})`);
    const loaded = session.peek();
    if (!loaded) return deny('policy-reloading', `receive ${JSON.stringify(topic)}: the policies are being reloaded after a change`);
    return decideFor(loaded, 'receive', topic);
  }

  private async withPolicies(session: PolicySession, decideWith: (loaded: LoadedPolicies) => Verdict): Promise<Verdict> {
    let loaded: LoadedPolicies;
    try {
      loaded = await session.current();
    } catch (err) {
      // Fail closed: without the policies nothing is allowed.
      return deny('policy-unavailable', `the policies could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
    return decideWith(loaded);
  }
}
