/**
 * Rotation campaigns (DESIGN.md "Lifecycle"; docs/device-protocol.md): a
 * selection of certificates is materialised as one item per certificate;
 * running the campaign publishes a retained `renew-required` to each
 * target's thing at the throttled rate; the device renews and confirms
 * (renewal.ts moves the item on), and the old certificate retires after the
 * grace period. Every step is in the database, so a node that was killed
 * resumes each campaign where it was; retained messages live in the broker's
 * memory, so on start the runner publishes again those of items still
 * waiting for their device.
 *
 * A campaign may have a deadline: once it has passed, items whose device has
 * not confirmed fail with reason `deadline` (the old certificate stays
 * active, the retained renew-required is cleared), so the campaign reaches
 * `completed` even when some devices never come back. A new certificate
 * already issued to such a device stays valid; confirming it later still
 * retires the old one as a routine renewal.
 */
import { randomUUID } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { thingTopic } from '../broker/index.js';
import { audit, type Actor } from '../registry/actor.js';
import type { Authorities } from '../registry/authorities.js';
import type {
  CampaignItemRecord,
  CampaignItemState,
  CampaignRecord,
  CampaignSelection,
  CampaignStatus,
  CampaignStore,
  CampaignTarget,
  CertificateRecord,
  CertificateStore,
  Page,
  ThingGroupStore,
} from '../store/index.js';
import { DEFAULT_GRACE_SECONDS } from './renewal.js';

export const RENEW_REQUIRED = 'certificate/renew-required';
export const DEFAULT_RATE_PER_MINUTE = 60;
const MAX_RATE_PER_MINUTE = 100_000;
const MAX_TARGETS = 1_000_000;
const DAY = 86_400_000;

/** What the broker offers for this (RunningBroker.publish). */
export interface RetainedPublisher {
  publish(topic: string, payload: Buffer | string, opts?: { readonly retain?: boolean }): Promise<void>;
}

export interface CampaignInput {
  readonly expiringWithinDays?: number;
  readonly caId?: string;
  readonly group?: string;
  readonly certificateIds?: readonly string[];
  readonly ratePerMinute?: number;
  readonly graceSeconds?: number;
  /** The CA the new certificates come from (id or name); default each old certificate's issuer. */
  readonly issuer?: string;
  /** Days from now after which devices that have not confirmed are given up on; default none. */
  readonly deadlineDays?: number;
}

export interface CampaignView {
  readonly campaign: CampaignRecord;
  readonly counts: Record<CampaignItemState, number>;
}

export interface CampaignDeps {
  readonly store: CampaignStore & Pick<CertificateStore, 'getCertificate' | 'listCertificates'> & Pick<ThingGroupStore, 'getGroup' | 'listGroupMembers'>;
  readonly authorities: Pick<Authorities, 'get'>;
  readonly bus: Pick<EventBus, 'emit' | 'on'>;
  readonly now: () => Date;
  /** How often the runner looks for work; default one second. */
  readonly tickMs?: number;
}

/** The renew-required payload (docs/device-protocol.md). */
export const renewRequired = (campaignId: string, c: CertificateRecord) =>
  JSON.stringify({ campaignId, certificateId: c.id, notAfter: c.notAfter.toISOString(), reason: 'rotation-campaign' });

export class Campaigns {
  #publisher: RetainedPublisher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #off: (() => void) | undefined;

  constructor(private readonly deps: CampaignDeps) {}

  async create(actor: Actor, input: CampaignInput): Promise<CampaignView> {
    // A CA may be named by id or name; the selection keeps its id.
    const caId = input.caId === undefined ? undefined : (await this.deps.authorities.get(input.caId)).id;
    const selection = checkSelection({ ...input, ...(caId !== undefined ? { caId } : {}) });
    const rate = input.ratePerMinute ?? DEFAULT_RATE_PER_MINUTE;
    if (!Number.isInteger(rate) || rate < 1 || rate > MAX_RATE_PER_MINUTE) throw new CertfleetError('bad-request', `ratePerMinute must be a whole number from 1 to ${MAX_RATE_PER_MINUTE}`);
    const grace = input.graceSeconds ?? DEFAULT_GRACE_SECONDS;
    if (!Number.isInteger(grace) || grace < 0 || grace > 3650 * 86_400) throw new CertfleetError('bad-request', 'graceSeconds must be a whole number of seconds, at most ten years');
    const deadlineDays = input.deadlineDays;
    if (deadlineDays !== undefined && (!Number.isInteger(deadlineDays) || deadlineDays < 1 || deadlineDays > 3650)) {
      throw new CertfleetError('bad-request', 'deadlineDays must be a whole number of days from 1 to 3650');
    }
    const createdAt = this.deps.now();
    const deadlineAt = deadlineDays === undefined ? null : new Date(createdAt.getTime() + deadlineDays * DAY);
    const issuer = input.issuer === undefined ? null : await this.deps.authorities.get(input.issuer);
    if (issuer && issuer.status !== 'active') throw new CertfleetError('invalid-state', `CA ${issuer.name} is ${issuer.status}: it cannot issue the new certificates`);
    const targets = await this.targets(selection);
    if (targets.length === 0) throw new CertfleetError('bad-request', 'the selection matches no active certificate on a thing');
    const id = randomUUID();
    const campaign = await this.deps.store.createCampaign(
      { id, selection, ratePerMinute: rate, graceSeconds: grace, issuerId: issuer?.id ?? null, createdBy: actor.id, createdAt, deadlineAt },
      targets,
      audit(actor, 'campaign.create', `campaign:${id}`, {
        selection,
        ratePerMinute: rate,
        graceSeconds: grace,
        issuerId: issuer?.id ?? null,
        targets: targets.length,
        ...(deadlineAt ? { deadlineAt: deadlineAt.toISOString() } : {}),
      }),
    );
    this.deps.bus.emit('campaign.status-changed', { campaignId: id, status: 'running' });
    this.kick();
    return { campaign, counts: await this.deps.store.countCampaignItems(id) };
  }

  async get(id: string): Promise<CampaignView> {
    const campaign = await this.deps.store.getCampaign(id);
    if (!campaign) throw new CertfleetError('not-found', `no campaign ${id}`);
    return { campaign, counts: await this.deps.store.countCampaignItems(id) };
  }

  list(page: { limit: number; cursor?: string }): Promise<Page<CampaignRecord>> {
    return this.deps.store.listCampaigns(page);
  }

  async items(id: string, query: { state?: CampaignItemState; limit: number; cursor?: string }): Promise<Page<CampaignItemRecord>> {
    await this.get(id);
    return this.deps.store.listCampaignItems(id, query);
  }

  pause(actor: Actor, id: string): Promise<CampaignView> {
    return this.move(actor, id, ['running'], 'paused');
  }

  async resume(actor: Actor, id: string): Promise<CampaignView> {
    const view = await this.move(actor, id, ['paused'], 'running');
    this.kick();
    return view;
  }

  /**
   * Stops notifying; items not renewed yet fail with reason `cancelled` and
   * their retained renew-required is cleared (an empty retained message,
   * MQTT 3.1.1 §3.3.1.3). Renewals already issued may still be confirmed.
   */
  async cancel(actor: Actor, id: string): Promise<CampaignView> {
    await this.move(actor, id, ['running', 'paused'], 'cancelled');
    await this.giveUp(id, ['pending', 'notified'], 'cancelled');
    return this.get(id);
  }

  /** Items in `states` fail with `reason`; those whose device was told to renew get their retained renew-required cleared. */
  private async giveUp(id: string, states: readonly CampaignItemState[], reason: string): Promise<void> {
    for await (const item of this.itemsIn(id, states)) {
      if (!(await this.deps.store.setCampaignItemState(id, item.certificateId, [item.state], 'failed', { reason }))) continue;
      this.itemChanged(item, 'failed', reason);
      if (item.state !== 'pending' && item.thingName !== null) await this.clear(item.thingName);
    }
  }

  /**
   * The broker is up: publish again what it lost with its memory (retained
   * renew-required of items still waiting), then run every interval.
   */
  async start(publisher: RetainedPublisher): Promise<void> {
    this.#publisher = publisher;
    // The device confirmed: nothing is required of it any more.
    this.#off = this.deps.bus.on('campaign.item-changed', async (e) => {
      if (e.state === 'confirmed' && e.thingName !== null) await this.clear(e.thingName);
    });
    for (const c of await this.deps.store.campaignsIn(['running', 'paused'])) {
      // Past its deadline the first pass gives these items up and clears their messages instead.
      if (c.deadlineAt !== null && c.deadlineAt.getTime() <= this.deps.now().getTime()) continue;
      // `issued` too: the device may have its new certificate and still need to confirm.
      for await (const item of this.itemsIn(c.id, ['notified', 'issued'])) {
        const cert = await this.deps.store.getCertificate(item.certificateId);
        if (cert && item.thingName !== null) await this.publish(item.thingName, renewRequired(c.id, cert));
      }
    }
    this.#timer = setInterval(() => this.kick(), this.deps.tickMs ?? 1000);
    this.#timer.unref();
    await this.kick();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#off?.();
    await this.#running?.catch(() => {});
    this.#publisher = undefined;
  }

  /** One pass of the runner now (unless one is under way); resolves when it is done. */
  kick(): Promise<void> {
    if (!this.#publisher) return Promise.resolve();
    this.#running ??= this.tick()
      .catch((err: unknown) => console.error(`certfleet: campaign runner: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  private async tick(): Promise<void> {
    const now = this.deps.now();
    // Past the deadline: whoever has not confirmed is given up on, paused campaigns too.
    for (const c of await this.deps.store.campaignsIn(['running', 'paused'])) {
      if (c.deadlineAt === null || c.deadlineAt.getTime() > now.getTime()) continue;
      await this.giveUp(c.id, ['pending', 'notified', 'issued'], 'deadline');
      if (c.status === 'paused') await this.completeIfDone(c.id, 'paused');
    }
    for (const c of await this.deps.store.campaignsIn(['running'])) {
      // Throttle: at most rate per rolling minute, spread over the ticks of that minute.
      const perTick = Math.ceil((c.ratePerMinute * (this.deps.tickMs ?? 1000)) / 60_000);
      const budget = Math.min(perTick, c.ratePerMinute - (await this.deps.store.countNotifiedSince(c.id, new Date(now.getTime() - 60_000))));
      if (budget > 0) {
        const { items } = await this.deps.store.listCampaignItems(c.id, { state: 'pending', limit: Math.min(budget, 1000) });
        for (const item of items) await this.notify(c, item);
      }
      await this.completeIfDone(c.id, 'running');
    }
  }

  /** Nothing left on its way (every item retired or failed): the campaign is completed. */
  private async completeIfDone(id: string, from: CampaignStatus): Promise<void> {
    const counts = await this.deps.store.countCampaignItems(id);
    if (counts.pending + counts.notified + counts.issued + counts.confirmed === 0) {
      await this.move({ id: 'system' }, id, [from], 'completed').catch(() => {});
    }
  }

  private async notify(c: CampaignRecord, item: CampaignItemRecord): Promise<void> {
    const cert = await this.deps.store.getCertificate(item.certificateId);
    const reason = !cert ? 'certificate-missing' : cert.status !== 'active' ? `certificate-${cert.status}` : cert.thingName === null ? 'no-thing' : undefined;
    if (reason !== undefined || !cert?.thingName) {
      if (await this.deps.store.setCampaignItemState(c.id, item.certificateId, ['pending'], 'failed', { reason: reason ?? 'no-thing' })) this.itemChanged(item, 'failed', reason);
      return;
    }
    // Published before it is recorded: a crash in between publishes it again, which a device takes as the same request.
    await this.publish(cert.thingName, renewRequired(c.id, cert));
    if (await this.deps.store.setCampaignItemState(c.id, item.certificateId, ['pending'], 'notified', { notifiedAt: this.deps.now() })) {
      this.itemChanged({ ...item, thingName: cert.thingName }, 'notified');
    }
  }

  private async move(actor: Actor, id: string, from: readonly CampaignStatus[], to: CampaignStatus): Promise<CampaignView> {
    const campaign = await this.deps.store.setCampaignStatus(id, from, to, audit(actor, `campaign.${to}`, `campaign:${id}`));
    this.deps.bus.emit('campaign.status-changed', { campaignId: id, status: to });
    return { campaign, counts: await this.deps.store.countCampaignItems(id) };
  }

  private async publish(thing: string, payload: string): Promise<void> {
    await this.#publisher?.publish(thingTopic(thing, RENEW_REQUIRED), payload, { retain: true });
  }

  private clear(thing: string): Promise<void> {
    return this.publish(thing, '');
  }

  private itemChanged(item: CampaignTarget & { campaignId: string }, state: CampaignItemState, reason?: string): void {
    this.deps.bus.emit('campaign.item-changed', { campaignId: item.campaignId, certificateId: item.certificateId, thingName: item.thingName, state, ...(reason ? { reason } : {}) });
  }

  private async *itemsIn(id: string, states: readonly CampaignItemState[]): AsyncGenerator<CampaignItemRecord> {
    for (const state of states) {
      let cursor: string | undefined;
      do {
        const page = await this.deps.store.listCampaignItems(id, { state, limit: 1000, ...(cursor ? { cursor } : {}) });
        yield* page.items;
        cursor = page.next;
      } while (cursor);
    }
  }

  /** Active certificates on a thing that match every part of the selection. */
  private async targets(sel: CampaignSelection): Promise<CampaignTarget[]> {
    const found = new Map<string, CampaignTarget>();
    const keep = (c: CertificateRecord) => {
      if (c.status !== 'active' || c.thingName === null) return;
      if (sel.caId !== undefined && c.issuerId !== sel.caId) return;
      if (sel.expiringWithinDays !== undefined && c.notAfter.getTime() >= this.deps.now().getTime() + sel.expiringWithinDays * DAY) return;
      found.set(c.id, { certificateId: c.id, thingName: c.thingName });
    };
    if (sel.certificateIds) {
      for (const id of sel.certificateIds) {
        const c = await this.deps.store.getCertificate(id.toLowerCase());
        if (!c) throw new CertfleetError('not-found', `no certificate ${id}`);
        keep(c);
      }
    } else if (sel.group !== undefined) {
      if (!(await this.deps.store.getGroup(sel.group))) throw new CertfleetError('not-found', `no thing group ${sel.group}`);
      let cursor: string | undefined;
      do {
        const page = await this.deps.store.listGroupMembers(sel.group, { limit: 1000, ...(cursor ? { cursor } : {}) });
        for (const thing of page.items) await this.scan({ thing: thing.name }, keep);
        cursor = page.next;
      } while (cursor);
    } else {
      await this.scan(
        {
          ...(sel.caId !== undefined ? { issuerId: sel.caId } : {}),
          ...(sel.expiringWithinDays !== undefined ? { expiringBefore: new Date(this.deps.now().getTime() + sel.expiringWithinDays * DAY) } : {}),
        },
        keep,
      );
    }
    if (found.size > MAX_TARGETS) throw new CertfleetError('bad-request', `the selection matches more than ${MAX_TARGETS} certificates: split it`);
    return [...found.values()];
  }

  private async scan(filter: { thing?: string; issuerId?: string; expiringBefore?: Date }, keep: (c: CertificateRecord) => void): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.deps.store.listCertificates({ ...filter, status: 'active', limit: 1000, ...(cursor ? { cursor } : {}) });
      page.items.forEach(keep);
      cursor = page.next;
    } while (cursor);
  }
}

function checkSelection(input: CampaignInput): CampaignSelection {
  const sel: { -readonly [K in keyof CampaignSelection]: CampaignSelection[K] } = {};
  if (input.expiringWithinDays !== undefined) {
    if (!Number.isInteger(input.expiringWithinDays) || input.expiringWithinDays < 1 || input.expiringWithinDays > 3650) {
      throw new CertfleetError('bad-request', 'expiringWithinDays must be a whole number of days from 1 to 3650');
    }
    sel.expiringWithinDays = input.expiringWithinDays;
  }
  if (input.caId !== undefined) sel.caId = input.caId;
  if (input.group !== undefined) sel.group = input.group;
  if (input.certificateIds !== undefined) {
    if (!Array.isArray(input.certificateIds) || input.certificateIds.length === 0 || !input.certificateIds.every((i) => typeof i === 'string' && /^[0-9a-fA-F]{64}$/.test(i))) {
      throw new CertfleetError('bad-request', 'certificateIds must be a non-empty list of certificate ids (SHA-256, hex)');
    }
    sel.certificateIds = [...new Set(input.certificateIds.map((i) => i.toLowerCase()))];
  }
  if (sel.group !== undefined && sel.certificateIds !== undefined) throw new CertfleetError('bad-request', 'select by group or by certificate ids, not both');
  if (Object.keys(sel).length === 0) throw new CertfleetError('bad-request', 'a campaign needs a selection: expiringWithinDays, caId, group or certificateIds');
  return sel;
}
