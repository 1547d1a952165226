import { sql } from 'kysely';
import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import { lockGroup } from './groups.js';
import type {
  EffectivePolicy,
  Page,
  PageRequest,
  PolicyAttachment,
  PolicyDocument,
  PolicyTarget,
  PolicyTargetType,
} from './records.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for `policy_attachments`: which policies apply to a certificate, either
 * attached to it or to a group (or an ancestor group) of its thing.
 */

// Bounds the walk up the group tree (groups.ts keeps trees 16 deep).
const WALK_LIMIT = 64;

/** 'not-found' for a missing policy or target, 'conflict' if already attached. */
export async function attachPolicy(ctx: StoreContext, name: string, target: PolicyTarget, audit?: AuditInput): Promise<void> {
  checkTarget(target);
  const createdAt = toIso(ctx.now(), 'createdAt');
  await write(ctx, `policy ${name} on ${target.type} ${target.id}`, audit, async (trx) => {
    if (target.type === 'group') {
      // Row-locked, so a concurrent deleteGroup either sees this attachment or runs first.
      await lockGroup(trx, target.id);
    } else {
      const certificate = await trx.selectFrom('certificates').select('id').where('id', '=', target.id).executeTakeFirst();
      if (certificate === undefined) throw new CertfleetError('not-found', `certificate ${target.id} not found`);
    }
    try {
      await trx
        .insertInto('policy_attachments')
        .values({ policy_name: name, target_type: target.type, target_id: target.id, created_at: createdAt })
        .execute();
    } catch (err) {
      if (classifyDriverError(err) === 'foreign-key') throw new CertfleetError('not-found', `policy ${name} not found`);
      throw err;
    }
  });
}

export async function detachPolicy(ctx: StoreContext, name: string, target: PolicyTarget, audit?: AuditInput): Promise<void> {
  checkTarget(target);
  await write(ctx, `policy ${name} on ${target.type} ${target.id}`, audit, async (trx) => {
    const result = await trx
      .deleteFrom('policy_attachments')
      .where('policy_name', '=', name)
      .where('target_type', '=', target.type)
      .where('target_id', '=', target.id)
      .executeTakeFirst();
    if (result.numDeletedRows === 0n) {
      throw new CertfleetError('not-found', `policy ${name} is not attached to ${target.type} ${target.id}`);
    }
  });
}

/** Ordered by (target type, target id); 'not-found' for an unknown policy. */
export async function listAttachments(db: Db, name: string, page: PageRequest): Promise<Page<PolicyAttachment>> {
  checkLimit(page.limit);
  const kind = 'policy-attachments';
  const after = page.cursor === undefined ? undefined : decodeAttachmentCursor(kind, page.cursor);
  const rows = await guarded(`policy ${name}`, async () => {
    if ((await db.selectFrom('policies').select('name').where('name', '=', name).executeTakeFirst()) === undefined) {
      throw new CertfleetError('not-found', `policy ${name} not found`);
    }
    let select = db
      .selectFrom('policy_attachments')
      .select(['target_type', 'target_id', 'created_at'])
      .where('policy_name', '=', name);
    if (after !== undefined) {
      select = select.where(({ eb, refTuple, tuple }) => eb(refTuple('target_type', 'target_id'), '>', tuple(after[0], after[1])));
    }
    return select.orderBy('target_type').orderBy('target_id').limit(page.limit + 1).execute();
  });
  const items: PolicyAttachment[] = rows.slice(0, page.limit).map((r) => ({
    policyName: name,
    target: { type: r.target_type, id: r.target_id },
    createdAt: fromIso(r.created_at),
  }));
  const last = rows.length > page.limit ? items[page.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(kind, [last.target.type, last.target.id]) };
}

/** Names of the policies attached directly to the target (not inherited), by name. */
export async function policiesOfTarget(db: Db, target: PolicyTarget): Promise<string[]> {
  checkTarget(target);
  const rows = await guarded(`${target.type} ${target.id}`, () =>
    db
      .selectFrom('policy_attachments')
      .select('policy_name')
      .where('target_type', '=', target.type)
      .where('target_id', '=', target.id)
      .orderBy('policy_name')
      .execute(),
  );
  return rows.map((r) => r.policy_name);
}

/**
 * The broker's question on connect, answered in one round trip: the default
 * version of every policy attached to the certificate, or to a group of its
 * thing, or to any ancestor of such a group. Each policy once, by name; empty
 * for an unknown certificate (nothing is allowed).
 */
export async function effectivePolicies(db: Db, certificateId: string): Promise<EffectivePolicy[]> {
  const rows = await guarded(`policies of certificate ${certificateId}`, () =>
    db
      .withRecursive('up(name, depth)', (qb) =>
        qb
          .selectFrom('certificates as c')
          .innerJoin('thing_group_members as m', 'm.thing_name', 'c.thing_name')
          .select(['m.group_name as name', sql<number>`0`.as('depth')])
          .where('c.id', '=', certificateId)
          .unionAll((qb) =>
            qb
              .selectFrom('up')
              .innerJoin('thing_groups as g', 'g.name', 'up.name')
              .select(['g.parent_name as name', sql<number>`up.depth + 1`.as('depth')])
              .where('g.parent_name', 'is not', null)
              .where('up.depth', '<', WALK_LIMIT)
              .$narrowType<{ name: string }>(),
          ),
      )
      .selectFrom('policy_attachments as a')
      .innerJoin('policies as p', 'p.name', 'a.policy_name')
      .innerJoin('policy_versions as v', (join) =>
        join.onRef('v.policy_name', '=', 'p.name').onRef('v.version', '=', 'p.default_version'),
      )
      .select(['p.name', 'p.default_version', 'v.document'])
      .where((eb) =>
        eb.or([
          eb.and([eb('a.target_type', '=', 'certificate'), eb('a.target_id', '=', certificateId)]),
          eb.and([eb('a.target_type', '=', 'group'), eb('a.target_id', 'in', eb.selectFrom('up').select('up.name'))]),
        ]),
      )
      .distinct()
      .orderBy('p.name')
      .execute(),
  );
  return rows.map((r) => ({ name: r.name, version: r.default_version, document: JSON.parse(r.document) as PolicyDocument }));
}

function decodeAttachmentCursor(kind: string, cursor: string): [PolicyTargetType, string] {
  const [type, id] = decodeCursor(kind, cursor, 2) as [string, string];
  if (type !== 'certificate' && type !== 'group') throw new CertfleetError('bad-request', 'invalid page cursor');
  return [type, id];
}

function checkTarget(target: PolicyTarget): void {
  if (
    typeof target !== 'object' ||
    target === null ||
    (target.type !== 'certificate' && target.type !== 'group') ||
    typeof target.id !== 'string' ||
    target.id === ''
  ) {
    throw new CertfleetError('bad-request', "policy target must be { type: 'certificate' | 'group', id }");
  }
}
