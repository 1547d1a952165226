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

export class PolicyLoader {
  constructor(
    private readonly sources: PolicySources,
    private readonly onInvalidDocument: (name: string, err: unknown) => void = () => {},
  ) {}

  /**
   * Reads the certificate again (its thing may have changed since admission,
   * or its status), its effective policies and its thing's attributes.
   * Rejects only when the store fails.
   */
  async load(identity: DeviceIdentity, clientId: string): Promise<LoadedPolicies> {
    const { certificateId } = identity;
    const [certificate, policies, guessedThing] = await Promise.all([
      this.sources.certificates.getCertificate(certificateId),
      this.sources.policies.effectivePolicies(certificateId),
      identity.thingName === null ? undefined : this.sources.things.getThing(identity.thingName),
    ]);
    const thingName = certificate?.thingName ?? null;
    const thing = thingName === null ? undefined : thingName === guessedThing?.name ? guessedThing : await this.sources.things.getThing(thingName);
    const context: PolicyContext = {
      certificateId,
      clientId,
      ...(thingName === null ? {} : { thingName }),
      ...(thing ? { thingAttributes: thing.attributes } : {}),
      ...(identity.subjectCn === null ? {} : { subjectCn: identity.subjectCn }),
    };
    const notActive = certificate === undefined ? 'unknown' : certificate.status === 'active' ? null : certificate.status;
    // A claim credential is on no thing: only those cost the extra read.
    const claim = notActive === null && thingName === null && this.sources.claims ? await this.sources.claims.getClaim(certificateId) : undefined;
    const none: LoadedPolicies = { documents: [], names: [], context, certificateNotActive: notActive, claimTemplate: claim?.template ?? null };
    if (notActive !== null || claim) return none;
    const documents: PolicyDocument[] = [];
    for (const p of policies) {
      const doc = parsedDocument(p, this.onInvalidDocument);
      // A stored document the parser refuses could have held a deny: leaving
      // only it out could allow what it denied, so the whole set denies.
      if (doc === null) return none;
      documents.push(doc);
    }
    return { documents, names: policies.map((p) => p.name), context, certificateNotActive: null, claimTemplate: null };
  }
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
