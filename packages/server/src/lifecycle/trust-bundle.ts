/**
 * Trust-anchor rollover (DESIGN.md row 7, docs/device-protocol.md): the
 * roots devices should trust, as numbered versions. A new root is added
 * (version + 1) long before the old one expires; every thing with an active
 * certificate gets the bundle retained on `$certfleet/things/{thing}/trust-bundle`
 * and acknowledges it on `…/trust-bundle/ack`; the old root is removed only
 * once every such thing confirmed a bundle holding a root that stays.
 */
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { Authorities } from '../registry/authorities.js';
import { audit, type Actor } from '../registry/actor.js';
import type { CaStore, Page, PageRequest, TrustBundleStore } from '../store/index.js';

/** What the broker offers for this (RunningBroker.publish). */
export interface RetainedPublisher {
  publish(topic: string, payload: Buffer | string, opts?: { readonly retain?: boolean }): Promise<void>;
}

export interface TrustBundleDeps {
  readonly store: TrustBundleStore & Pick<CaStore, 'getCa'>;
  readonly authorities: Pick<Authorities, 'get' | 'rootId' | 'issuer'>;
  readonly bus: Pick<EventBus, 'on'>;
  readonly now: () => Date;
  /** Where publication failures go (the change itself is committed). */
  readonly onError?: (err: unknown) => void;
}

export interface TrustBundle {
  readonly version: number;
  /** CA ids, in bundle order. */
  readonly roots: readonly string[];
}

export interface TrustBundleStatus extends TrustBundle {
  readonly rootPems: readonly string[];
  /** Things with an active certificate. */
  readonly things: number;
  readonly acknowledged: number;
  readonly pending: number;
}

/** Removing a root that things still need, without `force`. */
export class RootStillNeeded extends CertfleetError {
  constructor(
    readonly caId: string,
    readonly pending: number,
  ) {
    super('invalid-state', `${pending} things have not acknowledged a trust bundle with a successor to ${caId}; wait, or remove with force`);
  }
}

/** Topic levels must not hold separators or wildcards [MQTT-4.7.3-2]; thing names never do. */
const SAFE_LEVEL = /^[^/+#\u0000]{1,256}$/;
export const trustBundleTopic = (thing: string): string => `$certfleet/things/${thing}/trust-bundle`;
export const TRUST_BUNDLE_ACK_FILTER = '$certfleet/things/+/trust-bundle/ack';
/** Things published to per page while a bundle goes out. */
const PUBLISH_BATCH = 500;

export class TrustBundles {
  #publisher: RetainedPublisher | undefined;
  #publishing: Promise<void> = Promise.resolve();
  #off: (() => void) | undefined;

  constructor(private readonly deps: TrustBundleDeps) {}

  /** The newest version; before the first change, version 0 holds the root `init` made. */
  async current(): Promise<TrustBundle> {
    const latest = await this.deps.store.latestTrustBundle();
    if (latest) return { version: latest.version, roots: latest.roots };
    return { version: 0, roots: [await this.deps.authorities.rootId()] };
  }

  async pems(bundle: TrustBundle): Promise<string[]> {
    return Promise.all(bundle.roots.map(async (id) => (await this.deps.authorities.issuer(id)).cert.toPem()));
  }

  async addRoot(actor: Actor, caId: string): Promise<TrustBundle> {
    const ca = await this.deps.authorities.get(caId);
    if (ca.kind !== 'root') throw new CertfleetError('bad-request', `CA ${ca.name} is not a root`);
    if (ca.status !== 'active') throw new CertfleetError('invalid-state', `CA ${ca.name} is ${ca.status}`);
    const cur = await this.current();
    if (cur.roots.includes(ca.id)) throw new CertfleetError('conflict', `CA ${ca.name} is already in trust bundle version ${cur.version}`);
    return this.change(cur, [...cur.roots, ca.id], audit(actor, 'trust.add-root', `ca:${ca.id}`, { version: cur.version + 1 }));
  }

  /**
   * A root may go only when every thing with an active certificate has
   * acknowledged a bundle version holding at least one root that stays (a
   * successor): otherwise RootStillNeeded with how many have not, unless
   * forced. Never the last root.
   */
  async removeRoot(actor: Actor, caId: string, force = false): Promise<TrustBundle & { pendingAtRemoval: number }> {
    const ca = await this.deps.authorities.get(caId);
    const cur = await this.current();
    if (!cur.roots.includes(ca.id)) throw new CertfleetError('not-found', `CA ${ca.name} is not in trust bundle version ${cur.version}`);
    const remaining = cur.roots.filter((r) => r !== ca.id);
    if (remaining.length === 0) throw new CertfleetError('invalid-state', `CA ${ca.name} is the last root of the trust bundle`);
    const pending = await this.deps.store.countThingsNotAcknowledging(await this.versionsWithAnyOf(remaining));
    if (pending > 0 && !force) throw new RootStillNeeded(ca.id, pending);
    const next = await this.change(cur, remaining, audit(actor, 'trust.remove-root', `ca:${ca.id}`, { version: cur.version + 1, pending, force }));
    return { ...next, pendingAtRemoval: pending };
  }

  private async versionsWithAnyOf(roots: readonly string[]): Promise<number[]> {
    return (await this.deps.store.trustBundleVersions()).filter((v) => v.roots.some((r) => roots.includes(r))).map((v) => v.version);
  }

  private async change(cur: TrustBundle, roots: string[], entry: ReturnType<typeof audit>): Promise<TrustBundle> {
    // Version 0 lives nowhere but in code; its successor is written as version 1.
    const written = await this.deps.store.appendTrustBundleVersion(cur.version, roots, entry);
    const bundle = { version: written.version, roots: written.roots };
    this.publishToAll(bundle);
    return bundle;
  }

  async acknowledge(thing: string, version: number): Promise<number> {
    const cur = await this.current();
    if (!Number.isInteger(version) || version < 1 || version > cur.version) {
      throw new CertfleetError('bad-request', `no trust bundle version ${String(version)} (current ${cur.version})`);
    }
    return this.deps.store.acknowledgeTrustBundle(thing, version, this.deps.now());
  }

  async status(): Promise<TrustBundleStatus> {
    const cur = await this.current();
    const [rootPems, things, pending] = await Promise.all([
      this.pems(cur),
      this.deps.store.countThingsWithActiveCertificates(),
      this.deps.store.countThingsNotAcknowledging([cur.version]),
    ]);
    return { ...cur, rootPems, things, pending, acknowledged: things - pending };
  }

  /** Things with an active certificate that have not acknowledged the current version. */
  async pending(page: PageRequest): Promise<Page<string> & { version: number }> {
    const cur = await this.current();
    return { ...(await this.deps.store.listThingsNotAcknowledging([cur.version], page)), version: cur.version };
  }

  /**
   * Starts delivering through the broker: each change goes to every thing
   * retained, and a thing that connects without having acknowledged the
   * current version gets it again (its retained message may predate the
   * thing, or have been cleared). Returns the function that stops.
   */
  attach(publisher: RetainedPublisher): () => void {
    this.#publisher = publisher;
    this.#off = this.deps.bus.on('thing.connected', async (e) => {
      if (e.thingName === null) return;
      const cur = await this.current();
      if (cur.version === 0) return;
      const acked = await this.deps.store.trustBundleAckOf(e.thingName);
      if (acked === undefined || acked < cur.version) await this.publishTo([e.thingName], cur, await this.pems(cur));
    });
    return () => {
      this.#off?.();
      this.#publisher = undefined;
    };
  }

  /** Resolves when every publication started so far is done (tests, shutdown). */
  settled(): Promise<void> {
    return this.#publishing;
  }

  private publishToAll(bundle: TrustBundle): void {
    if (!this.#publisher) return;
    // Queued behind the previous publication, so a later version is never overwritten by an earlier one.
    this.#publishing = this.#publishing.then(async () => {
      const pems = await this.pems(bundle);
      let cursor: string | undefined;
      do {
        const page = await this.deps.store.thingsWithActiveCertificates({ limit: PUBLISH_BATCH, ...(cursor ? { cursor } : {}) });
        await this.publishTo(page.items, bundle, pems);
        cursor = page.next;
      } while (cursor);
    }).catch((err: unknown) => (this.deps.onError ?? ((e) => console.error('certfleet: trust bundle publication failed:', e)))(err));
  }

  private async publishTo(things: readonly string[], bundle: TrustBundle, pems: readonly string[]): Promise<void> {
    const publisher = this.#publisher;
    if (!publisher) return;
    const payload = JSON.stringify({ version: bundle.version, roots: pems });
    await Promise.all(things.filter((t) => SAFE_LEVEL.test(t)).map((t) => publisher.publish(trustBundleTopic(t), payload, { retain: true })));
  }
}
