import type { PageRequest } from './records.js';

/** Records of the hash-chained audit log (audit.ts describes the chain). */

/**
 * Passed as the last argument of a mutating store method: the entry is
 * appended in the same transaction as the change, so there is never a change
 * without its entry nor an entry without its change.
 */
export interface AuditInput {
  /** Who: a token id, "system", a device's certificate id... */
  actor: string;
  /** What, e.g. "certificate.revoke". */
  action: string;
  /** On what, e.g. "certificate:3f9a…". */
  target: string;
  /** JSON-compatible; stored as canonical JSON (sorted keys). At most 64 KiB. */
  details?: Record<string, unknown>;
  /** Defaults to the store's clock. */
  at?: Date;
}

export interface AuditEntry {
  seq: number;
  at: Date;
  actor: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditQuery extends PageRequest {
  target?: string;
  actor?: string;
  /** 'desc' (newest first) unless told. */
  order?: 'asc' | 'desc';
}

export type AuditBreak = 'hash-mismatch' | 'prev-mismatch' | 'gap';

export type AuditVerification =
  | {
      ok: true;
      entries: number;
      /**
       * The last entry. The chain proves nothing was changed or removed before
       * it; removing entries at the end is only visible against a head kept
       * elsewhere, so callers should publish it (log, webhook, backup).
       */
      head: { seq: number; hash: string } | null;
    }
  | {
      ok: false;
      /** Entries verified intact before the broken one. */
      entries: number;
      firstBroken: { seq: number; reason: AuditBreak };
    };
