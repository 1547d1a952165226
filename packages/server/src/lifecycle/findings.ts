/**
 * Audit findings kept between runs: each run (API, CLI, or the schedule
 * `serve` keeps) is stored with what it found; a finding found again keeps
 * its first-seen time, one no longer found is resolved, and each finding
 * that is new is an `audit.finding` event (webhooks, MQTT lifecycle topic).
 */
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../events/bus.js';
import { findingId as findingKey, type AuditFindingQuery, type AuditFindingRecord, type AuditFindingStore, type AuditRunRecord, type Page } from '../store/index.js';
import { runAudit, type AuditDeps, type AuditOptions, type Finding } from './audits.js';

const HOUR = 3_600_000;
/** The schedule's default period (settings `audit.interval-hours`, `serve --audit-interval`). */
export const DEFAULT_AUDIT_INTERVAL_HOURS = 24;
export const SETTING_AUDIT_INTERVAL = 'audit.interval-hours';

export interface AuditFindingsDeps {
  readonly audit: Omit<AuditDeps, 'now'>;
  readonly store: AuditFindingStore;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

export interface StoredRun {
  readonly run: AuditRunRecord;
  readonly findings: readonly Finding[];
}

export class AuditFindings {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<StoredRun> | undefined;

  constructor(private readonly deps: AuditFindingsDeps) {}

  /** Runs the audit and stores it; runs never overlap (a second caller shares the first's result). */
  run(trigger: string, opts: AuditOptions = {}): Promise<StoredRun> {
    this.#running ??= this.#run(trigger, opts).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(trigger: string, opts: AuditOptions): Promise<StoredRun> {
    const startedAt = this.deps.now();
    const findings = await runAudit({ ...this.deps.audit, now: this.deps.now }, opts);
    const id = `run-${randomUUID()}`;
    const result = await this.deps.store.recordAuditRun({ id, startedAt, finishedAt: this.deps.now(), trigger, options: { ...opts } }, findings);
    // After the commit: an event names a finding the store already holds.
    const fresh = new Set(result.newFindingIds);
    for (const f of findings) {
      const findingId = findingKey(f);
      if (!fresh.delete(findingId)) continue;
      this.deps.bus.emit('audit.finding', { findingId, runId: id, severity: f.severity, reasonCode: f.reasonCode, resourceType: f.resourceType, resource: f.resource, message: f.message });
    }
    return { run: result.run, findings };
  }

  list(query: AuditFindingQuery): Promise<Page<AuditFindingRecord>> {
    return this.deps.store.listFindings(query);
  }

  /** Every finding matching `query` (its limit is the page size used), page after page. */
  async *all(query: Omit<AuditFindingQuery, 'limit' | 'cursor'>): AsyncGenerator<AuditFindingRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.deps.store.listFindings({ ...query, limit: 1000, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.next;
    } while (cursor);
  }

  latestRun(): Promise<AuditRunRecord | undefined> {
    return this.deps.store.latestAuditRun();
  }

  /**
   * Runs the audit every `hours` (the first run one period after start, so
   * a restart loop never hammers the database). The timer is unref'd: it
   * never keeps the process alive. A failed run goes to `onError`.
   */
  schedule(hours: number, onError: (err: unknown) => void = (err) => console.error('certfleet: scheduled audit failed:', err)): void {
    this.stop();
    if (!(hours > 0)) return;
    this.#timer = setInterval(() => {
      this.run('schedule').catch(onError);
    }, hours * HOUR);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** A CSV field (RFC 4180 §2): quoted when it holds a comma, quote or line break. */
export function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export const CSV_COLUMNS = ['id', 'severity', 'reasonCode', 'resourceType', 'resource', 'message', 'mitigations', 'firstSeen', 'lastSeen', 'resolvedAt'] as const;

export function csvRow(f: AuditFindingRecord): string {
  const values = [f.id, f.severity, f.reasonCode, f.resourceType, f.resource, f.message, f.mitigations.join(' '), f.firstSeen.toISOString(), f.lastSeen.toISOString(), f.resolvedAt?.toISOString() ?? ''];
  return values.map(csvField).join(',') + '\r\n';
}
