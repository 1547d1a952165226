import type { Page, PageRequest } from './records.js';

/* Records and the consumer interface of stored audit results (findings.ts). */

// A type, not an interface: Kysely's withTables() needs an index signature.
export type FindingTables = {
  audit_runs: {
    id: string;
    started_at: string;
    finished_at: string;
    trigger: string;
    options: string;
    findings: number;
    new_findings: number;
    resolved_findings: number;
  };
  audit_findings: {
    id: string;
    reason_code: string;
    resource_type: string;
    resource: string;
    severity: string;
    message: string;
    mitigations: string;
    first_seen: string;
    // When the row was last written; an open finding found again unchanged is not rewritten (finding-runs.ts).
    last_seen: string;
    last_run_id: string;
    resolved_at: string | null;
  };
};

/** What one audit run found (lifecycle/audits.ts decides the vocabulary; the store keeps strings). */
export interface Finding {
  readonly severity: string;
  readonly reasonCode: string;
  readonly resourceType: string;
  readonly resource: string;
  readonly message: string;
  readonly mitigations: readonly string[];
}

export interface NewAuditRun {
  readonly id: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** 'api', 'schedule', … */
  readonly trigger: string;
  readonly options: Record<string, unknown>;
}

export interface AuditRunRecord extends NewAuditRun {
  readonly findings: number;
  readonly newFindings: number;
  readonly resolvedFindings: number;
}

export interface AuditRunResult {
  readonly run: AuditRunRecord;
  /** Findings not open before this run (new, or found again after being resolved). */
  readonly newFindingIds: readonly string[];
}

export interface AuditFindingRecord {
  readonly id: string;
  readonly reasonCode: string;
  readonly resourceType: string;
  readonly resource: string;
  readonly severity: string;
  readonly message: string;
  readonly mitigations: readonly string[];
  readonly firstSeen: Date;
  /** The latest run's time while open (every open finding was found by it), the last run that found it once resolved. */
  readonly lastSeen: Date;
  readonly lastRunId: string;
  /** When a later run no longer found it; null while open. */
  readonly resolvedAt: Date | null;
}

export interface AuditFindingQuery extends PageRequest {
  readonly severity?: string;
  readonly reasonCode?: string;
  readonly resolved?: boolean;
  readonly ids?: readonly string[];
}

export interface RsaCertificateRow {
  readonly id: string;
  readonly subject: string;
  readonly keyAlgorithm: string;
  readonly der: Buffer;
}

export interface SilentDeviceRow {
  readonly certificateId: string;
  readonly thingName: string;
  /** Null: never connected. */
  readonly lastSeen: Date | null;
}

/** Stored audit results (lifecycle/findings.ts). */
export interface AuditFindingStore {
  /** All or nothing: the run, its findings upserted, the open findings it no longer found resolved. */
  recordAuditRun(run: NewAuditRun, findings: readonly Finding[]): Promise<AuditRunResult>;
  /** Ordered by id; a bad cursor is 'bad-request'. */
  listFindings(query: AuditFindingQuery): Promise<Page<AuditFindingRecord>>;
  latestAuditRun(): Promise<AuditRunRecord | undefined>;
}

/** The fleet-wide reads of the audit, one statement each (lifecycle/audits.ts). */
export interface AuditQueryStore {
  activeRsaCertificates(page: PageRequest): Promise<Page<RsaCertificateRow>>;
  activeCountsByIssuer(issuerIds: readonly string[]): Promise<Map<string, number>>;
  silentDevices(cutoff: Date, now: Date, page: PageRequest): Promise<Page<SilentDeviceRow>>;
}
