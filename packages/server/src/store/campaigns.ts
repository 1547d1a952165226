import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import * as certificates from './certificates.js';
import { fromIso, fromIsoOrNull, toIso } from './columns.js';
import { supersede } from './enrollment.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import type { CertificateRecord, NewCertificate, Page } from './records.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for certificate renewal and rotation campaigns (schema v8,
 * migrations/008_campaigns.ts; deadlines from schema 011). Which certificates a campaign targets, when
 * a device is notified and when an old certificate retires is decided in
 * lifecycle/; the store makes each step one compare-and-set transaction, so
 * a restart finds every campaign and renewal where it was.
 */

export type CampaignStatus = 'running' | 'paused' | 'cancelled' | 'completed';
export const CAMPAIGN_ITEM_STATES = ['pending', 'notified', 'issued', 'confirmed', 'retired', 'failed'] as const;
export type CampaignItemState = (typeof CAMPAIGN_ITEM_STATES)[number];
/** Items still on their way (a renewal may still move them). */
export const OPEN_ITEM_STATES: readonly CampaignItemState[] = ['pending', 'notified', 'issued', 'confirmed'];

/** What a campaign was created from, kept as given (the targets themselves are its items). */
export interface CampaignSelection {
  readonly expiringWithinDays?: number;
  readonly caId?: string;
  readonly group?: string;
  readonly certificateIds?: readonly string[];
}

export interface NewCampaign {
  readonly id: string;
  readonly selection: CampaignSelection;
  readonly ratePerMinute: number;
  readonly graceSeconds: number;
  /** The CA the new certificates come from; null: each old certificate's own issuer. */
  readonly issuerId: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  /** After this, items whose device has not confirmed fail with reason `deadline`; null or absent: none. */
  readonly deadlineAt?: Date | null;
}

export interface CampaignRecord extends NewCampaign {
  readonly status: CampaignStatus;
  readonly deadlineAt: Date | null;
  readonly updatedAt: Date;
}

export interface CampaignTarget {
  readonly certificateId: string;
  readonly thingName: string | null;
}

export interface CampaignItemRecord extends CampaignTarget {
  readonly campaignId: string;
  readonly state: CampaignItemState;
  readonly reason: string | null;
  readonly newCertificateId: string | null;
  readonly notifiedAt: Date | null;
  readonly updatedAt: Date;
}

/** A certificate issued to renew another. */
export interface RenewalRecord {
  readonly certificateId: string;
  readonly replacesId: string;
  readonly campaignId: string | null;
  readonly graceSeconds: number;
  readonly createdAt: Date;
  readonly confirmedAt: Date | null;
  readonly retireAt: Date | null;
  readonly retiredAt: Date | null;
}

export interface NewRenewal {
  readonly replacesId: string;
  readonly campaignId: string | null;
  readonly graceSeconds: number;
  /** Who asked, for the status history of the earlier renewals this one supersedes. */
  readonly actor?: string;
}

export interface RenewalInserted {
  /** Names of the policies copied from the old certificate. */
  readonly policies: string[];
  /** Earlier renewals of the same certificate never confirmed, revoked `superseded` by this one. */
  readonly superseded: CertificateRecord[];
}

export interface CampaignStore {
  /** The campaign and one pending item per target, all or nothing; 'not-found' for an unknown certificate. */
  createCampaign(campaign: NewCampaign, targets: readonly CampaignTarget[], audit?: AuditInput): Promise<CampaignRecord>;
  getCampaign(id: string): Promise<CampaignRecord | undefined>;
  /** Oldest first. */
  listCampaigns(page: { limit: number; cursor?: string }): Promise<Page<CampaignRecord>>;
  /** Campaigns in one of these statuses (the runner's read), oldest first. */
  campaignsIn(statuses: readonly CampaignStatus[]): Promise<CampaignRecord[]>;
  /** Compare-and-set: 'invalid-state' unless the status is one of `from`. */
  setCampaignStatus(id: string, from: readonly CampaignStatus[], to: CampaignStatus, audit?: AuditInput): Promise<CampaignRecord>;
  countCampaignItems(campaignId: string): Promise<Record<CampaignItemState, number>>;
  /** By certificate id; a bad cursor is 'bad-request'. */
  listCampaignItems(campaignId: string, query: { state?: CampaignItemState; limit: number; cursor?: string }): Promise<Page<CampaignItemRecord>>;
  /** Items notified at or after `since` (the throttle's window). */
  countNotifiedSince(campaignId: string, since: Date): Promise<number>;
  /** Compare-and-set on the item's state; false when it was no longer in one of `from`. */
  setCampaignItemState(
    campaignId: string,
    certificateId: string,
    from: readonly CampaignItemState[],
    to: CampaignItemState,
    fields?: { reason?: string | null; notifiedAt?: Date; newCertificateId?: string },
  ): Promise<boolean>;
  /** The item of a running or paused campaign still on its way for this (old) certificate, if any. */
  openItemOfCertificate(certificateId: string): Promise<CampaignItemRecord | undefined>;
  /** The item (of any campaign) that `newCertificateId` was issued for, if any. */
  itemOfNewCertificate(newCertificateId: string): Promise<CampaignItemRecord | undefined>;
}

export interface RenewalStore {
  /**
   * All or nothing: the new certificate (and its first history entry), a
   * copy of the old one's policy attachments, the link to the old one, the
   * old one's open campaign item moved to `issued`, and earlier renewals of
   * the old one that were never confirmed revoked `superseded` (the device
   * evidently did not install them). 'invalid-state' when the old one is no
   * longer active.
   */
  insertRenewal(certificate: NewCertificate, renewal: NewRenewal, audit?: AuditInput): Promise<RenewalInserted>;
  getRenewal(certificateId: string): Promise<RenewalRecord | undefined>;
  /**
   * Sets confirmed_at and retire_at once (a second confirmation returns the
   * first) and moves the campaign item to `confirmed`; 'not-found' when the
   * certificate renews nothing.
   */
  confirmRenewal(certificateId: string, at: Date, retireAt: Date): Promise<RenewalRecord>;
  /** Confirmed renewals not retired yet whose old certificate is still active (to deactivate). */
  confirmedWithActiveOld(limit: number): Promise<RenewalRecord[]>;
  /** Confirmed renewals not retired yet whose retire_at has come. */
  renewalsDue(at: Date, limit: number): Promise<RenewalRecord[]>;
  /** Sets retired_at and moves the campaign item to `retired`. */
  markRenewalRetired(certificateId: string, at: Date): Promise<void>;
}

type CampaignsTable = {
  id: string;
  status: CampaignStatus;
  selection: string;
  rate_per_minute: number;
  grace_seconds: number;
  issuer_id: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  deadline_at: string | null;
};

type CampaignItemsTable = {
  campaign_id: string;
  certificate_id: string;
  thing_name: string | null;
  state: CampaignItemState;
  reason: string | null;
  new_certificate_id: string | null;
  notified_at: string | null;
  updated_at: string;
};

type CertificateRenewalsTable = {
  certificate_id: string;
  replaces_id: string;
  campaign_id: string | null;
  grace_seconds: number;
  created_at: string;
  confirmed_at: string | null;
  retire_at: string | null;
  retired_at: string | null;
};

type Tables = {
  campaigns: CampaignsTable;
  campaign_items: CampaignItemsTable;
  certificate_renewals: CertificateRenewalsTable;
};

const t = (db: Db) => db.withTables<Tables>();

const campaignRecord = (r: CampaignsTable): CampaignRecord => ({
  id: r.id,
  status: r.status,
  selection: JSON.parse(r.selection) as CampaignSelection,
  ratePerMinute: Number(r.rate_per_minute),
  graceSeconds: Number(r.grace_seconds),
  issuerId: r.issuer_id,
  createdBy: r.created_by,
  createdAt: fromIso(r.created_at),
  updatedAt: fromIso(r.updated_at),
  deadlineAt: fromIsoOrNull(r.deadline_at),
});

const itemRecord = (r: CampaignItemsTable): CampaignItemRecord => ({
  campaignId: r.campaign_id,
  certificateId: r.certificate_id,
  thingName: r.thing_name,
  state: r.state,
  reason: r.reason,
  newCertificateId: r.new_certificate_id,
  notifiedAt: fromIsoOrNull(r.notified_at),
  updatedAt: fromIso(r.updated_at),
});

const renewalRecord = (r: CertificateRenewalsTable): RenewalRecord => ({
  certificateId: r.certificate_id,
  replacesId: r.replaces_id,
  campaignId: r.campaign_id,
  graceSeconds: Number(r.grace_seconds),
  createdAt: fromIso(r.created_at),
  confirmedAt: fromIsoOrNull(r.confirmed_at),
  retireAt: fromIsoOrNull(r.retire_at),
  retiredAt: fromIsoOrNull(r.retired_at),
});

/** Rows per INSERT: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535. */
const CHUNK = 500;

export async function createCampaign(ctx: StoreContext, c: NewCampaign, targets: readonly CampaignTarget[], audit?: AuditInput): Promise<CampaignRecord> {
  const at = toIso(c.createdAt, 'createdAt');
  const row: CampaignsTable = {
    id: c.id,
    status: 'running',
    selection: JSON.stringify(c.selection),
    rate_per_minute: c.ratePerMinute,
    grace_seconds: c.graceSeconds,
    issuer_id: c.issuerId,
    created_by: c.createdBy,
    created_at: at,
    updated_at: at,
    deadline_at: c.deadlineAt ? toIso(c.deadlineAt, 'deadlineAt') : null,
  };
  await write(ctx, `campaign ${c.id}`, audit, async (trx) => {
    await t(trx).insertInto('campaigns').values(row).execute();
    for (let i = 0; i < targets.length; i += CHUNK) {
      const rows = targets.slice(i, i + CHUNK).map((x) => ({
        campaign_id: c.id,
        certificate_id: x.certificateId,
        thing_name: x.thingName,
        state: 'pending' as const,
        reason: null,
        new_certificate_id: null,
        notified_at: null,
        updated_at: at,
      }));
      await t(trx).insertInto('campaign_items').values(rows).execute();
    }
  });
  return campaignRecord(row);
}

export async function getCampaign(db: Db, id: string): Promise<CampaignRecord | undefined> {
  const row = await guarded(`campaign ${id}`, () => t(db).selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst());
  return row && campaignRecord(row);
}

export async function listCampaigns(db: Db, page: { limit: number; cursor?: string }): Promise<Page<CampaignRecord>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? undefined : decodeCursor('campaigns', page.cursor, 2);
  const rows = await guarded('campaigns', () => {
    let q = t(db).selectFrom('campaigns').selectAll();
    if (after) q = q.where((eb) => eb.or([eb('created_at', '>', after[0]!), eb.and([eb('created_at', '=', after[0]!), eb('id', '>', after[1]!)])]));
    return q.orderBy('created_at').orderBy('id').limit(page.limit + 1).execute();
  });
  const items = rows.slice(0, page.limit).map(campaignRecord);
  const last = rows.length > page.limit ? rows[page.limit - 1]! : undefined;
  return { items, ...(last ? { next: encodeCursor('campaigns', [last.created_at, last.id]) } : {}) };
}

export async function campaignsIn(db: Db, statuses: readonly CampaignStatus[]): Promise<CampaignRecord[]> {
  if (statuses.length === 0) return [];
  const rows = await guarded('campaigns', () => t(db).selectFrom('campaigns').selectAll().where('status', 'in', statuses).orderBy('created_at').orderBy('id').execute());
  return rows.map(campaignRecord);
}

export async function setCampaignStatus(ctx: StoreContext, id: string, from: readonly CampaignStatus[], to: CampaignStatus, audit?: AuditInput): Promise<CampaignRecord> {
  const at = toIso(ctx.now(), 'updatedAt');
  return write(ctx, `campaign ${id}`, audit, async (trx) => {
    const row = await t(trx).selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new CertfleetError('not-found', `no campaign ${id}`);
    if (!from.includes(row.status)) throw new CertfleetError('invalid-state', `campaign ${id} is ${row.status}`);
    const done = await t(trx).updateTable('campaigns').set({ status: to, updated_at: at }).where('id', '=', id).where('status', '=', row.status).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new CertfleetError('invalid-state', `campaign ${id} changed meanwhile`);
    return campaignRecord({ ...row, status: to, updated_at: at });
  });
}

export async function countCampaignItems(db: Db, campaignId: string): Promise<Record<CampaignItemState, number>> {
  const rows = await guarded(`campaign ${campaignId}`, () =>
    t(db).selectFrom('campaign_items').select(['state', (eb) => eb.fn.countAll().as('n')]).where('campaign_id', '=', campaignId).groupBy('state').execute(),
  );
  const counts = Object.fromEntries(CAMPAIGN_ITEM_STATES.map((s) => [s, 0])) as Record<CampaignItemState, number>;
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

export async function listCampaignItems(
  db: Db,
  campaignId: string,
  query: { state?: CampaignItemState; limit: number; cursor?: string },
): Promise<Page<CampaignItemRecord>> {
  checkLimit(query.limit);
  const after = query.cursor === undefined ? undefined : decodeCursor('campaign-items', query.cursor, 1)[0];
  const rows = await guarded(`campaign ${campaignId}`, () => {
    let q = t(db).selectFrom('campaign_items').selectAll().where('campaign_id', '=', campaignId);
    if (query.state) q = q.where('state', '=', query.state);
    if (after !== undefined) q = q.where('certificate_id', '>', after);
    return q.orderBy('certificate_id').limit(query.limit + 1).execute();
  });
  const items = rows.slice(0, query.limit).map(itemRecord);
  const last = rows.length > query.limit ? rows[query.limit - 1]! : undefined;
  return { items, ...(last ? { next: encodeCursor('campaign-items', [last.certificate_id]) } : {}) };
}

export async function countNotifiedSince(db: Db, campaignId: string, since: Date): Promise<number> {
  const row = await guarded(`campaign ${campaignId}`, () =>
    t(db)
      .selectFrom('campaign_items')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('campaign_id', '=', campaignId)
      .where('notified_at', '>=', toIso(since, 'since'))
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

export async function setCampaignItemState(
  ctx: StoreContext,
  campaignId: string,
  certificateId: string,
  from: readonly CampaignItemState[],
  to: CampaignItemState,
  fields: { reason?: string | null; notifiedAt?: Date; newCertificateId?: string } = {},
): Promise<boolean> {
  const done = await guarded(`campaign item ${certificateId}`, () =>
    t(ctx.db)
      .updateTable('campaign_items')
      .set({
        state: to,
        updated_at: toIso(ctx.now(), 'updatedAt'),
        ...(fields.reason !== undefined ? { reason: fields.reason } : {}),
        ...(fields.notifiedAt ? { notified_at: toIso(fields.notifiedAt, 'notifiedAt') } : {}),
        ...(fields.newCertificateId ? { new_certificate_id: fields.newCertificateId } : {}),
      })
      .where('campaign_id', '=', campaignId)
      .where('certificate_id', '=', certificateId)
      .where('state', 'in', from)
      .executeTakeFirst(),
  );
  return Number(done.numUpdatedRows) === 1;
}

export async function openItemOfCertificate(db: Db, certificateId: string): Promise<CampaignItemRecord | undefined> {
  const row = await guarded(`certificate ${certificateId}`, () =>
    t(db)
      .selectFrom('campaign_items as i')
      .innerJoin('campaigns as c', 'c.id', 'i.campaign_id')
      .selectAll('i')
      .where('i.certificate_id', '=', certificateId)
      .where('c.status', 'in', ['running', 'paused'])
      .where('i.state', 'in', ['pending', 'notified', 'issued'])
      .orderBy('c.created_at', 'desc')
      .executeTakeFirst(),
  );
  return row && itemRecord(row);
}

export async function itemOfNewCertificate(db: Db, newCertificateId: string): Promise<CampaignItemRecord | undefined> {
  const row = await guarded(`certificate ${newCertificateId}`, () =>
    t(db).selectFrom('campaign_items').selectAll().where('new_certificate_id', '=', newCertificateId).orderBy('updated_at', 'desc').executeTakeFirst(),
  );
  return row && itemRecord(row);
}

export async function insertRenewal(ctx: StoreContext, certificate: NewCertificate, renewal: NewRenewal, audit?: AuditInput): Promise<RenewalInserted> {
  const at = toIso(certificate.createdAt, 'createdAt');
  return write(ctx, `renewal of ${renewal.replacesId}`, undefined, async (trx) => {
    // A write that changes nothing but checks "still active" and, on PostgreSQL, takes the old
    // row's lock: two renewals of one certificate run one after the other (as EST re-enrollment).
    const locked = await trx.updateTable('certificates').set({ status: 'active' }).where('id', '=', renewal.replacesId).where('status', '=', 'active').executeTakeFirst();
    if (Number(locked.numUpdatedRows) === 0) {
      const exists = await trx.selectFrom('certificates').select('status').where('id', '=', renewal.replacesId).executeTakeFirst();
      if (!exists) throw new CertfleetError('not-found', `no certificate ${renewal.replacesId}`);
      throw new CertfleetError('invalid-state', `certificate ${renewal.replacesId} is no longer active`);
    }
    // Asked again before confirming: the earlier new certificate was never installed (or its answer was lost).
    const superseded: CertificateRecord[] = [];
    const earlier = await t(trx).selectFrom('certificate_renewals').select('certificate_id').where('replaces_id', '=', renewal.replacesId).where('confirmed_at', 'is', null).where('retired_at', 'is', null).execute();
    for (const e of earlier) {
      await t(trx).updateTable('certificate_renewals').set({ retired_at: at }).where('certificate_id', '=', e.certificate_id).execute();
      const revoked = await supersede(trx, e.certificate_id, at, renewal.actor ?? 'system', `superseded by renewal ${certificate.id}, never confirmed`);
      if (revoked) superseded.push(revoked.record);
    }
    // Inside this transaction (transaction() joins the caller's).
    await certificates.insertCertificate({ ...ctx, db: trx }, certificate, audit);
    const policies = await trx
      .selectFrom('policy_attachments')
      .select('policy_name')
      .where('target_type', '=', 'certificate')
      .where('target_id', '=', renewal.replacesId)
      .orderBy('policy_name')
      .execute();
    if (policies.length > 0) {
      await trx
        .insertInto('policy_attachments')
        .values(policies.map((p) => ({ policy_name: p.policy_name, target_type: 'certificate' as const, target_id: certificate.id, created_at: at })))
        .execute();
    }
    await t(trx)
      .insertInto('certificate_renewals')
      .values({
        certificate_id: certificate.id,
        replaces_id: renewal.replacesId,
        campaign_id: renewal.campaignId,
        grace_seconds: renewal.graceSeconds,
        created_at: at,
        confirmed_at: null,
        retire_at: null,
        retired_at: null,
      })
      .execute();
    if (renewal.campaignId !== null) {
      await t(trx)
        .updateTable('campaign_items')
        .set({ state: 'issued', new_certificate_id: certificate.id, reason: null, updated_at: at })
        .where('campaign_id', '=', renewal.campaignId)
        .where('certificate_id', '=', renewal.replacesId)
        .where('state', 'in', ['pending', 'notified', 'issued'])
        .execute();
    }
    return { policies: policies.map((p) => p.policy_name), superseded };
  });
}

export async function getRenewal(db: Db, certificateId: string): Promise<RenewalRecord | undefined> {
  const row = await guarded(`renewal ${certificateId}`, () => t(db).selectFrom('certificate_renewals').selectAll().where('certificate_id', '=', certificateId).executeTakeFirst());
  return row && renewalRecord(row);
}

export async function confirmRenewal(ctx: StoreContext, certificateId: string, at: Date, retireAt: Date): Promise<RenewalRecord> {
  const when = toIso(at, 'confirmedAt');
  return write(ctx, `renewal ${certificateId}`, undefined, async (trx) => {
    const row = await t(trx).selectFrom('certificate_renewals').selectAll().where('certificate_id', '=', certificateId).executeTakeFirst();
    if (!row) throw new CertfleetError('not-found', `certificate ${certificateId} renews no certificate`);
    if (row.confirmed_at !== null) return renewalRecord(row);
    const confirmed = { ...row, confirmed_at: when, retire_at: toIso(retireAt, 'retireAt') };
    await t(trx)
      .updateTable('certificate_renewals')
      .set({ confirmed_at: confirmed.confirmed_at, retire_at: confirmed.retire_at })
      .where('certificate_id', '=', certificateId)
      .where('confirmed_at', 'is', null)
      .execute();
    if (row.campaign_id !== null) {
      await t(trx)
        .updateTable('campaign_items')
        .set({ state: 'confirmed', new_certificate_id: certificateId, updated_at: when })
        .where('campaign_id', '=', row.campaign_id)
        .where('certificate_id', '=', row.replaces_id)
        .where('state', 'in', ['pending', 'notified', 'issued'])
        .execute();
    }
    return renewalRecord(confirmed);
  });
}

export async function confirmedWithActiveOld(db: Db, limit: number): Promise<RenewalRecord[]> {
  const rows = await guarded('renewals', () =>
    t(db)
      .selectFrom('certificate_renewals as r')
      .innerJoin('certificates as c', 'c.id', 'r.replaces_id')
      .selectAll('r')
      .where('r.confirmed_at', 'is not', null)
      .where('r.retired_at', 'is', null)
      .where('c.status', '=', 'active')
      .limit(limit)
      .execute(),
  );
  return rows.map(renewalRecord);
}

export async function renewalsDue(db: Db, at: Date, limit: number): Promise<RenewalRecord[]> {
  const rows = await guarded('renewals', () =>
    t(db)
      .selectFrom('certificate_renewals')
      .selectAll()
      .where('retired_at', 'is', null)
      .where('retire_at', '<=', toIso(at, 'at'))
      .orderBy('retire_at')
      .limit(limit)
      .execute(),
  );
  return rows.map(renewalRecord);
}

export async function markRenewalRetired(ctx: StoreContext, certificateId: string, at: Date): Promise<void> {
  const when = toIso(at, 'retiredAt');
  await write(ctx, `renewal ${certificateId}`, undefined, async (trx) => {
    const row = await t(trx).selectFrom('certificate_renewals').selectAll().where('certificate_id', '=', certificateId).executeTakeFirst();
    if (!row) throw new CertfleetError('not-found', `certificate ${certificateId} renews no certificate`);
    await t(trx).updateTable('certificate_renewals').set({ retired_at: when }).where('certificate_id', '=', certificateId).where('retired_at', 'is', null).execute();
    if (row.campaign_id !== null) {
      await t(trx)
        .updateTable('campaign_items')
        .set({ state: 'retired', updated_at: when })
        .where('campaign_id', '=', row.campaign_id)
        .where('certificate_id', '=', row.replaces_id)
        .where('state', '=', 'confirmed')
        .execute();
    }
  });
}
