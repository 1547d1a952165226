import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { AUDIT_GENESIS_HASH, auditHash, prepareAudit, type PreparedAudit } from './audit.js';
import { CERTIFICATE_COLUMNS, certificateRecord, certificateRow } from './certificates.js';
import { toBlob, toIso } from './columns.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import { serialize } from './locks.js';
import type { CertificateRecord, IssuanceIntent, NewCertificate, ThingAttributes } from './records.js';
import type { AuditLogTable, Db, StoreDialect } from './schema.js';
import { checkAttributes } from './things.js';
import { transaction, type StoreContext } from './transaction.js';

/*
 * SQL for manufacturing batches: the same rows the one-at-a-time path writes
 * (issuance journal; things, certificates, status history, policy
 * attachments, group memberships, audit entries), written for a whole batch
 * in one transaction each, with multi-row inserts. One commit per batch
 * instead of three per device is what makes a factory run fast: with
 * synchronous=FULL (sqlite.ts) every commit is an fsync.
 *
 * Multi-row inserts are cut so that no statement carries more than
 * MAX_PARAMETERS bound values: below SQLite's limit (32,766 since 3.32,
 * https://www.sqlite.org/limits.html #9) and PostgreSQL's (65,535 in the
 * wire protocol's Bind message).
 */

const MAX_PARAMETERS = 16_000;
/** Rows per statement for a table of `columns` columns. */
const rowsPerStatement = (columns: number): number => Math.max(1, Math.min(1000, Math.floor(MAX_PARAMETERS / columns)));

function chunks<T>(rows: readonly T[], columns: number): T[][] {
  const size = rowsPerStatement(columns);
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** A thing of the batch: created with these attributes if missing, reused untouched if present. */
export interface BulkThing {
  readonly name: string;
  readonly attributes?: ThingAttributes;
}

/**
 * The audit entries of a batch, decided by the registry (the store only
 * learns inside the transaction which things it created and which
 * memberships are new). Absent: the batch is not audited.
 */
export interface BulkAudit {
  thingCreated(thing: string): AuditInput;
  certificateIssued(certificate: NewCertificate): AuditInput;
  policyAttached(policy: string, certificateId: string): AuditInput;
  groupJoined(group: string, thing: string): AuditInput;
}

export interface BulkRegistration {
  readonly things: readonly BulkThing[];
  /** Each on a thing of `things` (or none). */
  readonly certificates: readonly NewCertificate[];
  /** Attached to every certificate of the batch. */
  readonly policies: readonly string[];
  /** Every thing that receives a certificate joins these groups (if not a member yet). */
  readonly groups: readonly string[];
  readonly audit?: BulkAudit;
  /** Who, for the status history (the audit actor); "system" when absent. */
  readonly actor?: string;
}

export interface BulkRegistrationResult {
  /** Things this batch created (the others existed). */
  readonly createdThings: readonly string[];
  /** Audit entries appended. */
  readonly audited: number;
}

/** All serials and TBS bytes of a batch in one transaction: all are recorded or none ('conflict' on a serial seen before). */
export async function recordIntents(db: Db, intents: readonly IssuanceIntent[]): Promise<void> {
  if (intents.length === 0) return;
  const rows = intents.map((i) => ({
    serial: i.serial,
    issuer_id: i.issuerId,
    profile: i.profile,
    tbs_der: toBlob(i.tbsDer),
    created_at: toIso(i.createdAt, 'createdAt'),
  }));
  await guarded(`serials ${intents[0]!.serial}…`, () =>
    transaction(db, async (trx) => {
      for (const chunk of chunks(rows, 5)) await trx.insertInto('issuance_journal').values(chunk).execute();
    }),
  );
}

/** The certificates (any status but revoked) held by these things, for a batch that resumes after a kill. */
export async function liveCertificatesOfThings(db: Db, names: readonly string[]): Promise<CertificateRecord[]> {
  const out: CertificateRecord[] = [];
  for (const chunk of chunks([...new Set(names)], 1)) {
    const rows = await guarded('certificates of a batch', () =>
      db.selectFrom('certificates').select(CERTIFICATE_COLUMNS).where('thing_name', 'in', chunk).where('status', '!=', 'revoked').execute(),
    );
    for (const row of rows) out.push(certificateRecord(row));
  }
  return out;
}

/**
 * One transaction for a batch: things created if missing (ON CONFLICT DO
 * NOTHING … RETURNING tells which were), certificates with their first
 * status history entry, policy attachments, memberships not yet held, and
 * the audit entries in batch order (thing, certificate, policies, groups for
 * each device), chained under one hold of the chain lock. 'not-found' for a
 * missing policy, group or issuer (nothing is written), 'conflict' on a
 * duplicate certificate id or serial.
 */
export async function registerBulk(ctx: StoreContext, reg: BulkRegistration): Promise<BulkRegistrationResult> {
  const at = toIso(ctx.now(), 'createdAt');
  const thingRows = reg.things.map((t) => ({ name: t.name, attributes: JSON.stringify(checkAttributes(t.attributes ?? {}, 'thing')), created_at: at, updated_at: at }));
  const certRows = reg.certificates.map(certificateRow);
  const actor = reg.actor ?? 'system';
  return guarded('batch registration', () =>
    transaction(ctx.db, async (trx) => {
      const created = new Set<string>();
      for (const chunk of chunks(thingRows, 4)) {
        const inserted = await trx
          .insertInto('things')
          .values(chunk)
          .onConflict((oc) => oc.column('name').doNothing())
          .returning('name')
          .execute();
        for (const r of inserted) created.add(r.name);
      }

      for (const chunk of chunks(certRows, CERTIFICATE_COLUMNS.length)) {
        await checked('the thing or issuer of a certificate', () => trx.insertInto('certificates').values(chunk).execute());
      }
      const history = certRows.map((r) => ({ certificate_id: r.id, status: r.status, reason: null, actor, at: r.created_at }));
      for (const chunk of chunks(history, 5)) await trx.insertInto('certificate_status_history').values(chunk).execute();

      const attachments = certRows.flatMap((c) => reg.policies.map((p) => ({ policy_name: p, target_type: 'certificate' as const, target_id: c.id, created_at: at })));
      for (const chunk of chunks(attachments, 4)) await checked('a policy', () => trx.insertInto('policy_attachments').values(chunk).execute());

      // Memberships a thing already holds are kept, not duplicated, and not audited again.
      const holders = [...new Set(reg.certificates.map((c) => c.thingName).filter((t): t is string => t !== null))];
      const joined = new Set<string>();
      if (reg.groups.length > 0) {
        const held = new Set<string>();
        for (const chunk of chunks(holders.filter((t) => !created.has(t)), 1)) {
          const rows = await trx.selectFrom('thing_group_members').select(['group_name', 'thing_name']).where('thing_name', 'in', chunk).where('group_name', 'in', [...reg.groups]).execute();
          for (const r of rows) held.add(`${r.group_name}\n${r.thing_name}`);
        }
        const members = holders.flatMap((t) => reg.groups.filter((g) => !held.has(`${g}\n${t}`)).map((g) => ({ group_name: g, thing_name: t, created_at: at })));
        for (const chunk of chunks(members, 3)) await checked('a group', () => trx.insertInto('thing_group_members').values(chunk).execute());
        for (const m of members) joined.add(`${m.group_name}\n${m.thing_name}`);
      }

      let audited = 0;
      if (reg.audit) {
        const a = reg.audit;
        const entries: AuditInput[] = [];
        const thingAudited = new Set<string>();
        const thingCreated = (t: string | null) => {
          if (t === null || !created.has(t) || thingAudited.has(t)) return;
          thingAudited.add(t);
          entries.push(a.thingCreated(t));
        };
        for (const c of reg.certificates) {
          thingCreated(c.thingName);
          entries.push(a.certificateIssued(c));
          for (const p of reg.policies) entries.push(a.policyAttached(p, c.id));
          for (const g of reg.groups) if (c.thingName !== null && joined.has(`${g}\n${c.thingName}`)) entries.push(a.groupJoined(g, c.thingName));
        }
        // Things created without a certificate (none today, but keep the log complete).
        for (const t of reg.things) thingCreated(t.name);
        audited = await appendAudits(trx, ctx.dialect, entries.map((e) => prepareAudit(e, ctx.now)));
      }
      return { createdThings: [...created], audited };
    }),
  );
}

/** A foreign key failure says which kind of row is missing (the registry checked them first; this is a race with a delete). */
async function checked(missing: string, insert: () => Promise<unknown>): Promise<void> {
  try {
    await insert();
  } catch (err) {
    if (classifyDriverError(err) === 'foreign-key') throw new CertfleetError('not-found', `${missing} of the batch no longer exists`, { cause: err });
    throw err;
  }
}

/**
 * Appends ENTRIES to the hash chain in order (audit.ts describes the chain):
 * the head is read once under the chain lock, each hash chains on the one
 * before, and the rows go in with multi-row inserts. Inside the caller's
 * transaction, as appendAudit.
 */
export async function appendAudits(trx: Db, dialect: StoreDialect, entries: readonly PreparedAudit[]): Promise<number> {
  if (entries.length === 0) return 0;
  await serialize(trx, dialect, 'audit-chain');
  const head = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  let seq = head === undefined ? 0 : Number(head.seq);
  let prevHash = head?.hash ?? AUDIT_GENESIS_HASH;
  const rows: Array<Omit<AuditLogTable, 'seq'> & { seq: number }> = [];
  for (const e of entries) {
    seq += 1;
    const hash = auditHash({ ...e, seq, prevHash });
    rows.push({ seq, ...e, prev_hash: prevHash, hash });
    prevHash = hash;
  }
  for (const chunk of chunks(rows, 8)) await trx.insertInto('audit_log').values(chunk).execute();
  return rows.length;
}
