/** Records of webhooks and their delivery queue (webhooks.ts holds the SQL; events/webhooks.ts decides). */
import type { AuditInput } from './audit-records.js';

export interface WebhookRecord {
  id: string;
  /** http: or https:, checked by the caller. */
  url: string;
  /** Event names, or ['*'] for every event. */
  events: string[];
  /**
   * The shared secret every delivery is signed with (HMAC-SHA256). Stored as
   * given, not hashed: signing needs the secret itself. Never returned by the API.
   */
  secret: string;
  createdAt: Date;
}

export type NewWebhook = WebhookRecord;

export interface WebhookDeliveryRecord {
  id: string;
  webhookId: string;
  /** The JSON body, exactly as sent (and signed) on every attempt. */
  event: string;
  /** Attempts started so far (a claim counts as one). */
  attempts: number;
  /** When it is due next; null once delivered or given up. */
  nextAttemptAt: Date | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

export interface NewWebhookDelivery {
  id: string;
  webhookId: string;
  event: string;
  /** Usually now: due at once. */
  nextAttemptAt: Date;
  createdAt: Date;
}

/** A delivery a worker won (claimDueDeliveries), with where it goes. */
export interface ClaimedDelivery extends WebhookDeliveryRecord {
  url: string;
  secret: string;
}

/** The outcome of one attempt. */
export type DeliveryOutcome =
  | { delivered: true; at: Date }
  /** `retryAt` null: no more attempts (given up). */
  | { delivered: false; error: string; retryAt: Date | null };

/**
 * Webhooks and their persisted delivery queue (events/webhooks.ts). Writes
 * to the queue are not audited: they are bookkeeping of events whose own
 * changes were audited; creating and deleting a webhook are.
 */
export interface WebhookStore {
  /** 'conflict' on a duplicate id. */
  createWebhook(webhook: NewWebhook, audit?: AuditInput): Promise<WebhookRecord>;
  getWebhook(id: string): Promise<WebhookRecord | undefined>;
  /** Oldest first. */
  listWebhooks(): Promise<WebhookRecord[]>;
  /** With its deliveries; 'not-found' for an unknown id. */
  deleteWebhook(id: string, audit?: AuditInput): Promise<void>;
  /** Durable when it resolves; rows of a webhook deleted meanwhile are dropped. */
  enqueueDeliveries(deliveries: readonly NewWebhookDelivery[]): Promise<void>;
  /** Up to `limit` (1-1000) rows due at `now`, oldest first, each leased until `leaseUntil` and counted as an attempt. */
  claimDueDeliveries(now: Date, limit: number, leaseUntil: Date): Promise<ClaimedDelivery[]>;
  finishDelivery(id: string, outcome: DeliveryOutcome): Promise<void>;
  /** Newest first, at most `limit` (1-1000). */
  listDeliveries(webhookId: string, limit: number): Promise<WebhookDeliveryRecord[]>;
  /** Deletes delivered and given-up rows created before `before`; returns how many. */
  pruneDeliveries(before: Date): Promise<number>;
}
