/**
 * The policies of one connection, loaded once at CONNECT and kept on the
 * connection: every later publish, subscribe and receive is decided in
 * memory (evaluate() works on documents compiled once). When the registry
 * says something changed, the session is marked stale and reloads before its
 * next decision.
 */
import { evaluate, parsePolicyDocument, type PolicyAction, type PolicyContext, type PolicyDecision, type PolicyDocument } from '../registry/policy/index.js';
import type { CertificateStore, ClaimStore, EffectivePolicy, EffectivePolicyStore, ThingStore } from '../store/index.js';
import type { DeviceIdentity } from './admission.js';

/** The three reads a session makes; the Store implements all of them. */
export interface PolicySources {
  readonly policies: EffectivePolicyStore;
  readonly things: Pick<ThingStore, 'getThing'>;
  readonly certificates: Pick<CertificateStore, 'getCertificate'>;
  /** Which certificates are claim credentials (fleet provisioning); without it none is. */
  readonly claims?: ClaimStore;
}

/** What one load found: the documents and the values of their variables. */
export interface LoadedPolicies {
  readonly documents: readonly PolicyDocument[];
  /** The policies' names, index for index with `documents` (for logs: which one decided). */
  readonly names: readonly string[];
  readonly context: PolicyContext;
  /** Null when the certificate is active; otherwise its status now (every decision is then no). */
  readonly certificateNotActive: string | null;
  /** The template when the certificate is a claim credential (authorization.ts: claim rules, no policies); else null. */
  readonly claimTemplate: string | null;
}

/** Parsed documents by their JSON text: the same text always parses to the same document. */
const PARSED_LIMIT = 512;
const parsed = new Map<string, PolicyDocument | null>();

function parsedDocument(policy: EffectivePolicy, onInvalid: (name: string, err: unknown) => void): PolicyDocument | null {
  const key = JSON.stringify(policy.document);
  let doc = parsed.get(key);
  if (doc === undefined) {
    try {
      doc = parsePolicyDocument(policy.document);
    } catch (err) {
      onInvalid(policy.name, err);
      doc = null;
    }
    if (parsed.size >= PARSED_LIMIT) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, doc);
  }
  return doc;
}

/** What a load found besides the connection's own variables: shared by every connection of the certificate. */
interface CertificatePolicies {
  readonly thingName: string | null;
  readonly thingAttributes: Readonly<Record<string, string>> | undefined;
  readonly documents: readonly PolicyDocument[];
  readonly names: readonly string[];
  readonly claimTemplate: string | null;
}

/** Certificates whose policies are kept; beyond it the least recently used goes. */
const CACHED_CERTIFICATES = 10_000;

/** The registry events after which what a load read may be out of date (events/bus.ts). */
export interface PolicyChangeEvents {
  on(name: 'policy.changed' | 'thing.changed' | 'certificate.status-changed', listener: () => void): () => void;
}

export class PolicyLoader {
  /** Bumped by every registry event that may change a certificate's thing, status or policies. */
  #epoch = 0;
  /** Set by follow(): without the registry's events nothing read may be reused. */
  #following = false;
  /** By certificate id: what a load found during the current epoch (cleared when it ends). */
  readonly #cache = new Map<string, CertificatePolicies>();

  constructor(
    private readonly sources: PolicySources,
    private readonly onInvalidDocument: (name: string, err: unknown) => void = () => {},
  ) {}

  /**
   * Follows the registry's events: each ends the epoch, and with it what was
   * kept. Until then the loader reads everything on every load. Returns the
   * function that stops following.
   */
  follow(bus: PolicyChangeEvents): () => void {
    this.#following = true;
    const changed = () => this.changed();
    const offs = [bus.on('policy.changed', changed), bus.on('thing.changed', changed), bus.on('certificate.status-changed', changed)];
    return () => {
      this.#following = false;
      this.#cache.clear();
      offs.forEach((off) => off());
    };
  }

  /**
   * The current epoch: read it before admission reads the certificate's
   * record and put it in the identity (DeviceIdentity.recordEpoch).
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Something changed in the registry: nothing read before may be reused. */
  changed(): void {
    this.#epoch++;
    this.#cache.clear();
  }

  /**
   * The certificate's thing, status, effective policies and thing
   * attributes. Without a registry event since admission read the
   * certificate (identity.recordEpoch is the current epoch), admission's
   * answer stands: the certificate is active and on identity.thingName, and
   * it is not read again. What one load reads is kept for the certificate's
   * next connections until the next event (bench/mqtt-connect.ts: devices
   * reconnect far more often than the registry changes). Rejects only when
   * the store fails.
   */
  async load(identity: DeviceIdentity, clientId: string): Promise<LoadedPolicies> {
    const { certificateId } = identity;
    const kept = this.#following ? this.#cache.get(certificateId) : undefined;
    if (kept) {
      // Least recently used goes first.
      this.#cache.delete(certificateId);
      this.#cache.set(certificateId, kept);
      return loaded(kept, identity, clientId, null);
    }
    const epoch = this.#epoch;
    const admitted = this.#following && identity.recordEpoch === epoch;
    const [certificate, policies, guessedThing] = await Promise.all([
      admitted ? { thingName: identity.thingName, status: 'active' as const } : this.sources.certificates.getCertificate(certificateId),
      this.sources.policies.effectivePolicies(certificateId),
      identity.thingName === null ? undefined : this.sources.things.getThing(identity.thingName),
    ]);
    const thingName = certificate?.thingName ?? null;
    const thing = thingName === null ? undefined : thingName === guessedThing?.name ? guessedThing : await this.sources.things.getThing(thingName);
    const notActive = certificate === undefined ? 'unknown' : certificate.status === 'active' ? null : certificate.status;
    // A claim credential is on no thing: only those cost the extra read.
    const claim = notActive === null && thingName === null && this.sources.claims ? await this.sources.claims.getClaim(certificateId) : undefined;
    const found: CertificatePolicies = { thingName, thingAttributes: thing?.attributes, documents: [], names: [], claimTemplate: claim?.template ?? null };
    if (notActive !== null) return loaded(found, identity, clientId, notActive);
    const result = claim ? found : this.compile(found, policies);
    // Kept only if no event came while it was read: what was read may predate the change.
    if (this.#following && epoch === this.#epoch) {
      if (this.#cache.size >= CACHED_CERTIFICATES) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(certificateId, result);
    }
    return loaded(result, identity, clientId, null);
  }

  private compile(found: CertificatePolicies, policies: readonly EffectivePolicy[]): CertificatePolicies {
    const documents: PolicyDocument[] = [];
    for (const p of policies) {
      const doc = parsedDocument(p, this.onInvalidDocument);
      // A stored document the parser refuses could have held a deny: leaving
      // only it out could allow what it denied, so the whole set denies.
      if (doc === null) return found;
      documents.push(doc);
    }
    return { ...found, documents, names: policies.map((p) => p.name) };
  }
}

/** One connection's view of its certificate's policies: the variables that are its own (client id, subject CN) filled in. */
function loaded(p: CertificatePolicies, identity: DeviceIdentity, clientId: string, notActive: string | null): LoadedPolicies {
  const context: PolicyContext = {
    certificateId: identity.certificateId,
    clientId,
    ...(p.thingName === null ? {} : { thingName: p.thingName }),
    ...(p.thingAttributes ? { thingAttributes: p.thingAttributes } : {}),
    ...(identity.subjectCn === null ? {} : { subjectCn: identity.subjectCn }),
  };
  return { documents: p.documents, names: p.names, context, certificateNotActive: notActive, claimTemplate: p.claimTemplate };
}

const NO_POLICIES: PolicyDecision = Object.freeze({ allowed: false, reason: 'no-allow' });

export class PolicySession {
  #loaded: LoadedPolicies | undefined;
  #loading: Promise<LoadedPolicies> | undefined;
  /** Bumped by markStale(); a load started under an older generation is not trusted as fresh. */
  #generation = 0;

  constructor(
    private readonly loader: PolicyLoader,
    private readonly identity: DeviceIdentity,
    private readonly clientId: string,
  ) {}

  /** The policies, reloaded first if stale. Rejects only when the store fails. */
  current(): Promise<LoadedPolicies> {
    if (this.#loaded) return Promise.resolve(this.#loaded);
    return (this.#loading ??= this.#load());
  }

  /** The policies if fresh; otherwise undefined, and a reload is started (for decisions that cannot wait). */
  peek(): LoadedPolicies | undefined {
    if (!this.#loaded) this.current().catch(() => {});
    return this.#loaded;
  }

  /** The policies if fresh, without starting anything. */
  get loaded(): LoadedPolicies | undefined {
    return this.#loaded;
  }

  /** The thing the certificate was on at the last load (admission's answer before that). */
  get thingName(): string | null {
    return this.#loaded?.context.thingName ?? this.identity.thingName;
  }

  markStale(): void {
    this.#generation++;
    this.#loaded = undefined;
  }


  async #load(): Promise<LoadedPolicies> {
    try {
      for (;;) {
        const generation = this.#generation;
        const loaded = await this.loader.load(this.identity, this.clientId);
        // Marked stale while we read: what we read may predate the change.
        if (generation !== this.#generation) continue;
        this.#loaded = loaded;
        return loaded;
      }
    } finally {
      this.#loading = undefined;
    }
  }
}

/** Decides one request against the loaded policies (default deny). */
export function decide(loaded: LoadedPolicies, action: PolicyAction, resource: string): PolicyDecision {
  if (loaded.documents.length === 0) return NO_POLICIES;
  return evaluate(loaded.documents, { action, resource, context: loaded.context });
}

/** Reloads stale sessions in the background, a few at a time, so a policy change does not become a burst of queries. */
export function refreshInBackground(sessions: Iterable<PolicySession>, concurrency = 4): Promise<void> {
  const queue = [...sessions];
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) await s.current().catch(() => {});
  };
  return Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker)).then(() => {});
}
