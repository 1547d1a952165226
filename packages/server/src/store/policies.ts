import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import type { Page, PageRequest, PolicyDocument, PolicyRecord, PolicySummary, PolicyVersionRecord } from './records.js';
import type { Db, PoliciesTable } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for `policies` and `policy_versions`, after AWS IoT's policy versions:
 * at most MAX_POLICY_VERSIONS kept, one of them the default (the one that is
 * enforced); creating a sixth is refused until the operator deletes one, and
 * the default cannot be deleted. Version numbers only grow.
 *
 * Every write starts by updating the policy row (its updated_at), which
 * row-locks it on PostgreSQL until commit: writes on one policy run one after
 * the other, so two concurrent new versions cannot both see four and make six.
 */

export const MAX_POLICY_VERSIONS = 5;

export async function createPolicy(
  ctx: StoreContext,
  name: string,
  document: PolicyDocument,
  audit?: AuditInput,
): Promise<PolicyRecord> {
  const text = documentText(document);
  const at = toIso(ctx.now(), 'createdAt');
  await write(ctx, `policy ${name}`, audit, async (trx) => {
    await trx
      .insertInto('policies')
      .values({ name, default_version: 1, latest_version: 1, created_at: at, updated_at: at })
      .execute();
    await trx.insertInto('policy_versions').values({ policy_name: name, version: 1, document: text, created_at: at }).execute();
  });
  const createdAt = fromIso(at);
  return {
    name,
    defaultVersion: 1,
    versions: [{ version: 1, createdAt, isDefault: true }],
    document: JSON.parse(text) as PolicyDocument,
    createdAt,
    updatedAt: createdAt,
  };
}

/** One query, so the versions and the default are read from the same snapshot. */
export async function getPolicy(db: Db, name: string): Promise<PolicyRecord | undefined> {
  const rows = await guarded(`policy ${name}`, () =>
    db
      .selectFrom('policies as p')
      .innerJoin('policy_versions as v', 'v.policy_name', 'p.name')
      .select(['p.default_version', 'p.created_at', 'p.updated_at', 'v.version', 'v.document', 'v.created_at as version_created_at'])
      .where('p.name', '=', name)
      .orderBy('v.version')
      .execute(),
  );
  const first = rows[0];
  const current = rows.find((r) => r.version === first?.default_version);
  if (first === undefined || current === undefined) return undefined;
  return {
    name,
    defaultVersion: first.default_version,
    versions: rows.map((r) => ({
      version: r.version,
      createdAt: fromIso(r.version_created_at),
      isDefault: r.version === first.default_version,
    })),
    document: JSON.parse(current.document) as PolicyDocument,
    createdAt: fromIso(first.created_at),
    updatedAt: fromIso(first.updated_at),
  };
}

export async function getPolicyVersion(db: Db, name: string, version: number): Promise<PolicyVersionRecord | undefined> {
  checkVersion(version);
  const row = await guarded(`policy ${name}`, () =>
    db
      .selectFrom('policy_versions as v')
      .innerJoin('policies as p', 'p.name', 'v.policy_name')
      .select(['v.version', 'v.document', 'v.created_at', 'p.default_version'])
      .where('v.policy_name', '=', name)
      .where('v.version', '=', version)
      .executeTakeFirst(),
  );
  return (
    row && {
      policyName: name,
      version: row.version,
      document: JSON.parse(row.document) as PolicyDocument,
      createdAt: fromIso(row.created_at),
      isDefault: row.version === row.default_version,
    }
  );
}

/** Ordered by name. */
export async function listPolicies(db: Db, page: PageRequest): Promise<Page<PolicySummary>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? undefined : (decodeCursor('policies', page.cursor, 1)[0] as string);
  const rows = await guarded('policy list', () => {
    let select = db.selectFrom('policies').select(['name', 'default_version', 'created_at', 'updated_at']);
    if (after !== undefined) select = select.where('name', '>', after);
    return select.orderBy('name').limit(page.limit + 1).execute();
  });
  const items = rows.slice(0, page.limit).map(policySummary);
  const last = rows.length > page.limit ? items[page.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor('policies', [last.name]) };
}

/** 'invalid-state' when MAX_POLICY_VERSIONS versions exist already. */
export async function createPolicyVersion(
  ctx: StoreContext,
  name: string,
  document: PolicyDocument,
  options: { setDefault?: boolean } = {},
  audit?: AuditInput,
): Promise<PolicyVersionRecord> {
  const text = documentText(document);
  const at = toIso(ctx.now(), 'createdAt');
  const setDefault = options.setDefault === true;
  return write(ctx, `policy ${name}`, audit, async (trx) => {
    const policy = await trx
      .updateTable('policies')
      .set((eb) => ({ latest_version: eb('latest_version', '+', 1), updated_at: at }))
      .where('name', '=', name)
      .returning(['latest_version'])
      .executeTakeFirst();
    if (policy === undefined) throw new CertfleetError('not-found', `policy ${name} not found`);
    const { count } = await trx
      .selectFrom('policy_versions')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('policy_name', '=', name)
      .executeTakeFirstOrThrow();
    if (Number(count) >= MAX_POLICY_VERSIONS) {
      throw new CertfleetError('invalid-state', `policy ${name} has ${MAX_POLICY_VERSIONS} versions; delete one first`);
    }
    const version = policy.latest_version;
    await trx.insertInto('policy_versions').values({ policy_name: name, version, document: text, created_at: at }).execute();
    if (setDefault) await trx.updateTable('policies').set({ default_version: version }).where('name', '=', name).execute();
    return { policyName: name, version, document: JSON.parse(text) as PolicyDocument, createdAt: fromIso(at), isDefault: setDefault };
  });
}

export async function setDefaultPolicyVersion(
  ctx: StoreContext,
  name: string,
  version: number,
  audit?: AuditInput,
): Promise<void> {
  checkVersion(version);
  const at = toIso(ctx.now(), 'updatedAt');
  await write(ctx, `policy ${name}`, audit, async (trx) => {
    await lockPolicy(trx, name, at);
    const exists = await trx
      .selectFrom('policy_versions')
      .select('version')
      .where('policy_name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (exists === undefined) throw new CertfleetError('not-found', `policy ${name} has no version ${version}`);
    await trx.updateTable('policies').set({ default_version: version }).where('name', '=', name).execute();
  });
}

/** 'invalid-state' for the default version: make another one the default first. */
export async function deletePolicyVersion(ctx: StoreContext, name: string, version: number, audit?: AuditInput): Promise<void> {
  checkVersion(version);
  const at = toIso(ctx.now(), 'updatedAt');
  await write(ctx, `policy ${name}`, audit, async (trx) => {
    const policy = await lockPolicy(trx, name, at);
    if (policy.default_version === version) {
      throw new CertfleetError('invalid-state', `version ${version} is the default of policy ${name}`);
    }
    const result = await trx
      .deleteFrom('policy_versions')
      .where('policy_name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new CertfleetError('not-found', `policy ${name} has no version ${version}`);
  });
}

/** 'invalid-state' while the policy is attached to anything. */
export async function deletePolicy(ctx: StoreContext, name: string, audit?: AuditInput): Promise<void> {
  const attached = () => new CertfleetError('invalid-state', `policy ${name} is still attached`);
  const at = toIso(ctx.now(), 'updatedAt');
  await write(ctx, `policy ${name}`, audit, async (trx) => {
    await lockPolicy(trx, name, at);
    const attachment = await trx
      .selectFrom('policy_attachments')
      .select('target_id')
      .where('policy_name', '=', name)
      .limit(1)
      .executeTakeFirst();
    if (attachment !== undefined) throw attached();
    await trx.deleteFrom('policy_versions').where('policy_name', '=', name).execute();
    try {
      await trx.deleteFrom('policies').where('name', '=', name).execute();
    } catch (err) {
      // PostgreSQL: attached by a transaction that committed after our check.
      if (classifyDriverError(err) === 'foreign-key') throw attached();
      throw err;
    }
  });
}

/** Touches updated_at, which row-locks the policy until commit; 'not-found' if missing. */
async function lockPolicy(trx: Db, name: string, at: string): Promise<Pick<PoliciesTable, 'default_version'>> {
  const row = await trx
    .updateTable('policies')
    .set({ updated_at: at })
    .where('name', '=', name)
    .returning(['default_version'])
    .executeTakeFirst();
  if (row === undefined) throw new CertfleetError('not-found', `policy ${name} not found`);
  return row;
}

/** Any JSON object; its grammar is checked by the registry, which owns policy semantics. */
function documentText(document: unknown): string {
  const bad = new CertfleetError('bad-request', 'policy document must be a JSON object');
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw bad;
  try {
    return JSON.stringify(document);
  } catch (err) {
    throw new CertfleetError('bad-request', 'policy document is not serialisable as JSON', { cause: err });
  }
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) throw new CertfleetError('bad-request', 'policy version must be a positive integer');
}

function policySummary(row: Pick<PoliciesTable, 'name' | 'default_version' | 'created_at' | 'updated_at'>): PolicySummary {
  return {
    name: row.name,
    defaultVersion: row.default_version,
    createdAt: fromIso(row.created_at),
    updatedAt: fromIso(row.updated_at),
  };
}
