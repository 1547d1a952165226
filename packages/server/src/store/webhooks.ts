import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { fromIso, fromIsoOrNull, toIso } from './columns.js';
import { guarded } from './driver-errors.js';
import type { Db, WebhookDeliveriesTable, WebhooksTable } from './schema.js';
import { transaction, write, type StoreContext } from './transaction.js';
import type {
  ClaimedDelivery,
  DeliveryOutcome,
  NewWebhook,
  NewWebhookDelivery,
  WebhookDeliveryRecord,
  WebhookRecord,
} from './webhook-records.js';

/*
 * SQL for `webhooks` and `webhook_deliveries` (schema v5). The delivery table
 * is a queue several nodes may work at once: a worker claims a due row by
 * compare-and-set on its next_attempt_at (moved to the end of a lease), so a
 * row is sent by one worker at a time, and a worker that dies mid-delivery
 * only delays it until the lease ends (delivery is at least once; the
 * delivery id lets a receiver drop a repeat).
 */

const WEBHOOK_COLUMNS = ['id', 'url', 'events', 'secret', 'created_at'] as const;
const DELIVERY_COLUMNS = ['id', 'webhook_id', 'event', 'attempts', 'next_attempt_at', 'last_error', 'delivered_at', 'created_at'] as const;
/** One claim or listing reads at most this many rows. */
const MAX_BATCH = 1000;
/** last_error is a diagnostic, not a log: the start of it is enough. */
const MAX_ERROR = 512;

export async function createWebhook(ctx: StoreContext, w: NewWebhook, audit?: AuditInput): Promise<WebhookRecord> {
  const row: WebhooksTable = {
    id: w.id,
    url: w.url,
    events: JSON.stringify(w.events),
    secret: w.secret,
    created_at: toIso(w.createdAt, 'createdAt'),
  };
  await write(ctx, `webhook ${w.id}`, audit, (trx) => trx.insertInto('webhooks').values(row).execute());
  return webhookRecord(row);
}

export async function getWebhook(db: Db, id: string): Promise<WebhookRecord | undefined> {
  const row = await guarded(`webhook ${id}`, () => db.selectFrom('webhooks').select(WEBHOOK_COLUMNS).where('id', '=', id).executeTakeFirst());
  return row && webhookRecord(row);
}

/** Oldest first. Webhooks are few (an operator makes each one). */
export async function listWebhooks(db: Db): Promise<WebhookRecord[]> {
  const rows = await guarded('webhook list', () => db.selectFrom('webhooks').select(WEBHOOK_COLUMNS).orderBy('created_at').orderBy('id').execute());
  return rows.map(webhookRecord);
}

/** The webhook and its whole queue, delivered or not; 'not-found' for an unknown id. */
export async function deleteWebhook(ctx: StoreContext, id: string, audit?: AuditInput): Promise<void> {
  await write(ctx, `webhook ${id}`, audit, async (trx) => {
    await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    const result = await trx.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new CertfleetError('not-found', `webhook ${id} not found`);
  });
}

/**
 * Durable before the first attempt. All rows in one transaction; if a
 * webhook was deleted meanwhile (foreign key), the others are written one by
 * one and that webhook's row is dropped, as its webhook is.
 */
export async function enqueueDeliveries(db: Db, deliveries: readonly NewWebhookDelivery[]): Promise<void> {
  if (deliveries.length === 0) return;
  const rows = deliveries.map(deliveryRow);
  try {
    await guarded('webhook deliveries', () => transaction(db, (trx) => trx.insertInto('webhook_deliveries').values(rows).execute()));
  } catch (err) {
    if (!isNotFound(err)) throw err;
    for (const row of rows) {
      await guarded(`webhook delivery ${row.id}`, () => db.insertInto('webhook_deliveries').values(row).execute()).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
  }
}

const isNotFound = (err: unknown): boolean => err instanceof CertfleetError && err.code === 'not-found';

/**
 * Claims up to `limit` deliveries due at `now`, oldest first: each one's
 * next_attempt_at moves to `leaseUntil` and its attempts count goes up, by
 * compare-and-set, so two workers never both win a row.
 */
export async function claimDueDeliveries(db: Db, now: Date, limit: number, leaseUntil: Date): Promise<ClaimedDelivery[]> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BATCH) throw new CertfleetError('bad-request', `limit must be 1-${MAX_BATCH}`);
  const at = toIso(now, 'now');
  const lease = toIso(leaseUntil, 'leaseUntil');
  return guarded('webhook delivery claim', async () => {
    const due = await db
      .selectFrom('webhook_deliveries')
      .select(['id', 'next_attempt_at'])
      .where('next_attempt_at', '<=', at)
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    const won: string[] = [];
    for (const d of due) {
      const r = await db
        .updateTable('webhook_deliveries')
        .set((eb) => ({ next_attempt_at: lease, attempts: eb('attempts', '+', 1) }))
        .where('id', '=', d.id)
        .where('next_attempt_at', '=', d.next_attempt_at)
        .executeTakeFirst();
      if (r.numUpdatedRows > 0n) won.push(d.id);
    }
    if (won.length === 0) return [];
    const rows = await db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .select([...DELIVERY_COLUMNS.map((c) => `d.${c}` as const), 'w.url', 'w.secret'])
      .where('d.id', 'in', won)
      .execute();
    // In the order they were due (every claimed row now has the same lease time).
    const order = new Map(won.map((id, i) => [id, i]));
    rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    return rows.map((r) => ({ ...deliveryRecord(r), url: r.url, secret: r.secret }));
  });
}

/** Records an attempt's outcome; a row deleted meanwhile (its webhook was) is no error. */
export async function finishDelivery(db: Db, id: string, outcome: DeliveryOutcome): Promise<void> {
  const set: Partial<WebhookDeliveriesTable> = outcome.delivered
    ? { delivered_at: toIso(outcome.at, 'at'), next_attempt_at: null, last_error: null }
    : { last_error: outcome.error.slice(0, MAX_ERROR), next_attempt_at: outcome.retryAt === null ? null : toIso(outcome.retryAt, 'retryAt') };
  await guarded(`webhook delivery ${id}`, () => db.updateTable('webhook_deliveries').set(set).where('id', '=', id).execute());
}

/** A webhook's deliveries, newest first. */
export async function listDeliveries(db: Db, webhookId: string, limit: number): Promise<WebhookDeliveryRecord[]> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BATCH) throw new CertfleetError('bad-request', `limit must be 1-${MAX_BATCH}`);
  const rows = await guarded(`deliveries of webhook ${webhookId}`, () =>
    db
      .selectFrom('webhook_deliveries')
      .select(DELIVERY_COLUMNS)
      .where('webhook_id', '=', webhookId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute(),
  );
  return rows.map(deliveryRecord);
}

/** Removes finished rows (delivered or given up) created before `before`; returns how many. */
export async function pruneDeliveries(db: Db, before: Date): Promise<number> {
  const cutoff = toIso(before, 'before');
  const result = await guarded('webhook delivery pruning', () =>
    db.deleteFrom('webhook_deliveries').where('created_at', '<', cutoff).where('next_attempt_at', 'is', null).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}

function deliveryRow(d: NewWebhookDelivery): WebhookDeliveriesTable {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    event: d.event,
    attempts: 0,
    next_attempt_at: toIso(d.nextAttemptAt, 'nextAttemptAt'),
    last_error: null,
    delivered_at: null,
    created_at: toIso(d.createdAt, 'createdAt'),
  };
}

function webhookRecord(row: WebhooksTable): WebhookRecord {
  return { id: row.id, url: row.url, events: JSON.parse(row.events) as string[], secret: row.secret, createdAt: fromIso(row.created_at) };
}

function deliveryRecord(row: WebhookDeliveriesTable): WebhookDeliveryRecord {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    event: row.event,
    attempts: Number(row.attempts),
    nextAttemptAt: fromIsoOrNull(row.next_attempt_at),
    lastError: row.last_error,
    deliveredAt: fromIsoOrNull(row.delivered_at),
    createdAt: fromIso(row.created_at),
  };
}
