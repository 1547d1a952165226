import { sql } from 'kysely';
import type { AuditFindingQuery, AuditFindingRecord, AuditRunRecord, FindingTables, RsaCertificateRow, SilentDeviceRow } from './finding-records.js';
import { fromIso, fromIsoOrNull, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import type { Page, PageRequest } from './records.js';
import type { Db } from './schema.js';

/*
 * SQL for stored audit results (`audit_runs`, `audit_findings`, schema 009)
 * and the fleet-wide reads the audit makes at scale: each is one statement
 * over an index instead of a query per certificate (bench/audit.ts).
 */

const tables = (db: Db) => db.withTables<FindingTables>();

// Recording a run: finding-runs.ts.
export { findingId, recordAuditRun } from './finding-runs.js';
import { latestRun } from './finding-runs.js';

const FINDING_COLUMNS = ['id', 'reason_code', 'resource_type', 'resource', 'severity', 'message', 'mitigations', 'first_seen', 'last_seen', 'last_run_id', 'resolved_at'] as const;

export async function listFindings(db: Db, q: AuditFindingQuery): Promise<Page<AuditFindingRecord>> {
  checkLimit(q.limit);
  const after = q.cursor === undefined ? '' : decodeCursor('findings', q.cursor, 1)[0]!;
  let query = tables(db).selectFrom('audit_findings').select(FINDING_COLUMNS).where('id', '>', after);
  if (q.severity !== undefined) query = query.where('severity', '=', q.severity);
  if (q.reasonCode !== undefined) query = query.where('reason_code', '=', q.reasonCode);
  if (q.ids !== undefined) query = query.where('id', 'in', q.ids.length > 0 ? [...q.ids] : ['']);
  if (q.resolved === true) query = query.where('resolved_at', 'is not', null);
  if (q.resolved === false) query = query.where('resolved_at', 'is', null);
  // Read first: a run committing in between only writes rows later than it (finding-runs.ts).
  const latest = await guarded('audit findings', () => latestRun(db));
  const rows = await guarded('audit findings', () => query.orderBy('id').limit(q.limit + 1).execute());
  const items = rows.slice(0, q.limit).map((r) => {
    // An open finding was found by the latest run, which did not rewrite it if nothing about it changed.
    const seen = r.resolved_at === null && latest !== undefined && latest.finishedAt >= r.last_seen ? latest : { id: r.last_run_id, finishedAt: r.last_seen };
    return {
      id: r.id,
      reasonCode: r.reason_code,
      resourceType: r.resource_type,
      resource: r.resource,
      severity: r.severity,
      message: r.message,
      mitigations: JSON.parse(r.mitigations) as string[],
      firstSeen: fromIso(r.first_seen),
      lastSeen: fromIso(seen.finishedAt),
      lastRunId: seen.id,
      resolvedAt: fromIsoOrNull(r.resolved_at),
    };
  });
  return rows.length > q.limit ? { items, next: encodeCursor('findings', [items[items.length - 1]!.id]) } : { items };
}

export async function latestAuditRun(db: Db): Promise<AuditRunRecord | undefined> {
  const r = await guarded('audit runs', () =>
    tables(db).selectFrom('audit_runs').selectAll().orderBy('started_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst(),
  );
  if (!r) return undefined;
  return {
    id: r.id,
    startedAt: fromIso(r.started_at),
    finishedAt: fromIso(r.finished_at),
    trigger: r.trigger,
    options: JSON.parse(r.options) as Record<string, unknown>,
    findings: Number(r.findings),
    newFindings: Number(r.new_findings),
    resolvedFindings: Number(r.resolved_findings),
  };
}

/**
 * Active RSA certificates, algorithm by algorithm ('rsa-1024', 'rsa-2048',
 * …), each a range of the (key_algorithm, status, id) index: an ORDER BY id
 * over a range of algorithms would make SQLite walk the primary key
 * instead, reading every row (bench/audit.ts: 4.5 s per 300,000).
 */
export async function activeRsaCertificates(db: Db, page: PageRequest): Promise<Page<RsaCertificateRow>> {
  checkLimit(page.limit);
  const [fromAlgorithm, after] = page.cursor === undefined ? ['', ''] : (decodeCursor('rsa', page.cursor, 2) as [string, string]);
  const algorithms = (
    await guarded('RSA key algorithms', () =>
      db.selectFrom('certificates').select('key_algorithm').distinct().where('key_algorithm', '>=', 'rsa-').where('key_algorithm', '<', 'rsa.').execute(),
    )
  )
    .map((r) => r.key_algorithm)
    .filter((a) => a >= fromAlgorithm)
    .sort();
  const items: RsaCertificateRow[] = [];
  for (const algorithm of algorithms) {
    const need = page.limit - items.length;
    const rows = await guarded('RSA certificates', () =>
      db
        .selectFrom('certificates')
        .select(['id', 'subject', 'key_algorithm', 'der'])
        .where('key_algorithm', '=', algorithm)
        .where('status', '=', 'active')
        .where('id', '>', algorithm === fromAlgorithm ? after : '')
        .orderBy('id')
        .limit(need + 1)
        .execute(),
    );
    items.push(...rows.slice(0, need).map((r) => ({ id: r.id, subject: r.subject, keyAlgorithm: r.key_algorithm, der: Buffer.from(r.der) })));
    if (rows.length > need) return { items, next: encodeCursor('rsa', [algorithm, items[items.length - 1]!.id]) };
  }
  return { items };
}

/**
 * Active certificates of each of `issuerIds`: one count per issuer over the
 * (issuer_id, status, id) index. A GROUP BY over all issuers would have
 * SQLite read every active row instead (4.5 s per 300,000).
 */
export async function activeCountsByIssuer(db: Db, issuerIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const id of issuerIds) {
    const row = await guarded(`active certificates of ${id}`, () =>
      db
        .selectFrom('certificates')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('issuer_id', '=', id)
        .where('status', '=', 'active')
        .executeTakeFirstOrThrow(),
    );
    out.set(id, Number(row.n));
  }
  return out;
}

/**
 * Active device certificates on a thing, issued before `cutoff`, never
 * connected or last seen before `cutoff` (an open connection counts as seen
 * now). One statement; certificates issued after the cutoff are excluded
 * first, as neither can apply to them.
 */
export async function silentDevices(db: Db, cutoff: Date, now: Date, page: PageRequest): Promise<Page<SilentDeviceRow>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? '' : decodeCursor('silent', page.cursor, 1)[0]!;
  const c = toIso(cutoff, 'cutoff');
  const n = toIso(now, 'now');
  const rows = await guarded('silent devices', () =>
    db
      .selectFrom('certificates as c')
      .leftJoin('connections as k', 'k.certificate_id', 'c.id')
      // No connection row: the left join's nulls, so the maximum is null (never seen); an open connection is seen now.
      .select(['c.id', 'c.thing_name', sql<string | null>`max(case when k.id is null then null else coalesce(k.disconnected_at, ${n}) end)`.as('last_seen')])
      .where('c.status', '=', 'active')
      .where('c.profile', '=', 'device')
      .where('c.thing_name', 'is not', null)
      .where('c.created_at', '<', c)
      .where('c.id', '>', after)
      .groupBy(['c.id', 'c.thing_name'])
      .having(sql<boolean>`max(case when k.id is null then null else coalesce(k.disconnected_at, ${n}) end) is null or max(case when k.id is null then null else coalesce(k.disconnected_at, ${n}) end) < ${c}`)
      .orderBy('c.id')
      .limit(page.limit + 1)
      .execute(),
  );
  const items = rows.slice(0, page.limit).map((r) => ({ certificateId: r.id, thingName: r.thing_name!, lastSeen: r.last_seen === null ? null : fromIso(r.last_seen) }));
  return rows.length > page.limit ? { items, next: encodeCursor('silent', [items[items.length - 1]!.certificateId]) } : { items };
}
