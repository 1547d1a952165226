import { sql, type RawBuilder } from 'kysely';
import type { AuditRunRecord, AuditRunResult, Finding, FindingTables, NewAuditRun } from './finding-records.js';
import { toIso } from './columns.js';
import { guarded } from './driver-errors.js';
import { getSetting, putSetting } from './settings.js';
import type { Db, StoreDialect } from './schema.js';
import { transaction, type StoreContext } from './transaction.js';
import { hash } from 'node:crypto';

/*
 * Recording an audit run (`audit_runs`, `audit_findings`, schema 009).
 *
 * A fleet audit finds mostly what the run before it found (bench/audit.ts:
 * 56,039 findings at a million certificates, nearly all of them again), so
 * a run writes only what changed:
 *
 *   1. the open findings are read (id and the columns a run can change);
 *   2. those this run no longer finds are resolved, by id;
 *   3. new ones, ones found again after being resolved, and open ones whose
 *      severity, message or mitigations changed are upserted;
 *   4. open ones found again unchanged are not written at all.
 *
 * Step 4 rests on an invariant: after every run, each open finding was
 * found by that run (a run resolves every other). So an open finding was
 * last seen by the latest run, which the setting `audit.latest-run` names
 * (written in the same transaction); its own last_seen / last_run_id
 * columns hold when it was last written, and listFindings() reports the
 * later of the two. A finding resolved in step 2 gets the latest run's time
 * as its last seen, from then on its own. Rewriting every open row instead
 * cost 2.4-3.2 s per run on PostgreSQL at 56,000 findings (a new tuple and
 * four index entries per row).
 *
 * Rows travel as one JSON array per statement (a single bound parameter,
 * unpacked by json_each on SQLite and jsonb_array_elements on PostgreSQL),
 * so there is no per-row SQL text to build and no bound-parameter limit to
 * cut around (SQLite 32,766, PostgreSQL 65,535); JSON_ROWS only bounds the
 * size of one parameter.
 */

/** Settings key: the latest recorded run, when every open finding was last seen. */
export const SETTING_LATEST_RUN = 'audit.latest-run';

const JSON_ROWS = 20_000;

const tables = (db: Db) => db.withTables<FindingTables>();

/** A finding is one (reason, resource) pair: the same problem found again is the same finding. */
export function findingId(f: Pick<Finding, 'reasonCode' | 'resourceType' | 'resource'>): string {
  // crypto.hash (Node 20.12): a third of createHash's cost per finding, the same digest.
  return hash('sha256', `${f.reasonCode}\u0000${f.resourceType}\u0000${f.resource}`).slice(0, 32);
}

type Row = readonly [id: string, reasonCode: string, resourceType: string, resource: string, severity: string, message: string, mitigations: string];

function slices<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += JSON_ROWS) out.push(items.slice(i, i + JSON_ROWS));
  return out;
}

/** The elements of a JSON array parameter, one row each, as `e`: `value` on SQLite, `e` on PostgreSQL. */
function elements(dialect: StoreDialect, items: readonly unknown[]): RawBuilder<unknown> {
  const json = JSON.stringify(items);
  return dialect === 'postgres' ? sql`jsonb_array_elements(${json}::jsonb) as e` : sql`json_each(${json}) as e`;
}

/** Field `i` of a row array, as text. */
function field(dialect: StoreDialect, i: number): RawBuilder<string> {
  return dialect === 'postgres' ? sql`e->>${sql.lit(i)}` : sql`json_extract(e.value, ${sql.raw(`'$[${i}]'`)})`;
}

/** One element of an array of strings, as text. */
const element = (dialect: StoreDialect): RawBuilder<string> => (dialect === 'postgres' ? sql`e #>> '{}'` : sql`e.value`);

/** Resolves `ids` at `at`; their last seen becomes the latest run's (`seen`), when known. */
async function resolve(trx: Db, dialect: StoreDialect, ids: readonly string[], at: string, seen: LatestRun | undefined): Promise<number> {
  const lastSeen = seen ? sql`, last_seen = ${seen.finishedAt}, last_run_id = ${seen.id}` : sql``;
  let n = 0;
  for (const part of slices(ids)) {
    const r = await sql`update audit_findings set resolved_at = ${at}${lastSeen} where resolved_at is null and id in (select ${element(dialect)} from ${elements(dialect, part)})`.execute(trx);
    n += Number(r.numAffectedRows ?? 0n);
  }
  return n;
}

export interface LatestRun {
  readonly id: string;
  /** ISO 8601, as stored. */
  readonly finishedAt: string;
}

/** The run named by `audit.latest-run`; undefined before the first run recorded this way. */
export async function latestRun(db: Db): Promise<LatestRun | undefined> {
  const id = await getSetting(db, SETTING_LATEST_RUN);
  if (id === undefined) return undefined;
  const r = await tables(db).selectFrom('audit_runs').select(['id', 'finished_at']).where('id', '=', id).executeTakeFirst();
  return r ? { id: r.id, finishedAt: r.finished_at } : undefined;
}

async function upsert(trx: Db, dialect: StoreDialect, rows: readonly Row[], at: string, runId: string): Promise<void> {
  const f = (i: number) => field(dialect, i);
  for (const part of slices(rows)) {
    // SQLite needs a WHERE in an INSERT … SELECT … ON CONFLICT to parse it (https://www.sqlite.org/lang_upsert.html, "Parsing Ambiguity").
    await sql`
      insert into audit_findings (id, reason_code, resource_type, resource, severity, message, mitigations, first_seen, last_seen, last_run_id, resolved_at)
      select ${f(0)}, ${f(1)}, ${f(2)}, ${f(3)}, ${f(4)}, ${f(5)}, ${f(6)}, ${at}, ${at}, ${runId}, null from ${elements(dialect, part)} where true
      on conflict (id) do update set
        severity = excluded.severity,
        message = excluded.message,
        mitigations = excluded.mitigations,
        last_seen = excluded.last_seen,
        last_run_id = excluded.last_run_id,
        first_seen = case when audit_findings.resolved_at is null then audit_findings.first_seen else excluded.first_seen end,
        resolved_at = null`.execute(trx);
  }
}

/**
 * One transaction: the run, its new findings, the ones it found again (last
 * seen moves; found again after being resolved: first seen is now), and
 * every open finding it did not find resolved. Returns the findings that
 * were not open before it (new or reopened).
 */
export async function recordAuditRun(ctx: StoreContext, run: NewAuditRun, findings: readonly Finding[]): Promise<AuditRunResult> {
  const at = toIso(run.finishedAt, 'finishedAt');
  const unique = new Map<string, Row>();
  for (const f of findings) {
    const id = findingId(f);
    unique.set(id, [id, f.reasonCode, f.resourceType, f.resource, f.severity, f.message, JSON.stringify(f.mitigations)]);
  }
  return guarded('audit run', () =>
    transaction(ctx.db, async (trx) => {
      // Two nodes auditing at once would each resolve what the other just found.
      // SHARE ROW EXCLUSIVE conflicts with itself and with writers, never with readers (PostgreSQL docs, 13.3.1);
      // SQLite's BEGIN IMMEDIATE (sqlite.ts) already holds the single write lock.
      if (ctx.dialect === 'postgres') await sql`lock table audit_findings in share row exclusive mode`.execute(trx);
      const t = tables(trx);
      const open = new Map<string, string>();
      for (const r of await t.selectFrom('audit_findings').select(['id', 'severity', 'message', 'mitigations']).where('resolved_at', 'is', null).execute()) {
        open.set(r.id, `${r.severity}\u0000${r.message}\u0000${r.mitigations}`);
      }
      const fresh: string[] = [];
      const writes: Row[] = [];
      for (const row of unique.values()) {
        const before = open.get(row[0]);
        if (before === undefined) fresh.push(row[0]);
        if (before !== `${row[4]}\u0000${row[5]}\u0000${row[6]}`) writes.push(row);
      }
      const gone = [...open.keys()].filter((id) => !unique.has(id));
      const resolved = await resolve(trx, ctx.dialect, gone, at, await latestRun(trx));
      await upsert(trx, ctx.dialect, writes, at, run.id);
      // Found again, unchanged: not written; this run is their last seen from now on.
      await putSetting(trx, SETTING_LATEST_RUN, run.id);
      const record: AuditRunRecord = { ...run, findings: unique.size, newFindings: fresh.length, resolvedFindings: resolved };
      await t
        .insertInto('audit_runs')
        .values({
          id: run.id,
          started_at: toIso(run.startedAt, 'startedAt'),
          finished_at: at,
          trigger: run.trigger,
          options: JSON.stringify(run.options),
          findings: record.findings,
          new_findings: record.newFindings,
          resolved_findings: record.resolvedFindings,
        })
        .execute();
      return { run: record, newFindingIds: fresh };
    }),
  );
}
