import { sql } from 'kysely';
import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import { serialize } from './locks.js';
import type {
  NewThingGroup,
  Page,
  PageRequest,
  ThingAttributes,
  ThingGroupAncestor,
  ThingGroupRecord,
  ThingRecord,
} from './records.js';
import type { Db, ThingGroupsTable } from './schema.js';
import { checkAttributes, THING_COLUMNS, thingRecord } from './things.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for `thing_groups` and `thing_group_members`. Groups form a forest: a
 * group has at most one parent, at most MAX_GROUP_DEPTH levels from its root,
 * and no cycles. Writes that change the shape (create under a parent, move,
 * delete) check it under the group-tree lock (locks.ts), so two concurrent
 * moves cannot each pass the check and together make a cycle.
 */

/** Levels from a root group (level 1) to the deepest group. */
export const MAX_GROUP_DEPTH = 16;
// Bounds every recursive walk, so even a corrupted table cannot loop forever.
const WALK_LIMIT = 4 * MAX_GROUP_DEPTH;

const GROUP_COLUMNS = ['name', 'parent_name', 'description', 'attributes', 'created_at'] as const;

export async function createGroup(ctx: StoreContext, group: NewThingGroup, audit?: AuditInput): Promise<ThingGroupRecord> {
  const row: ThingGroupsTable = {
    name: group.name,
    parent_name: group.parent ?? null,
    description: checkDescription(group.description),
    attributes: JSON.stringify(checkAttributes(group.attributes ?? {}, 'group')),
    created_at: toIso(ctx.now(), 'createdAt'),
  };
  return write(ctx, `group ${group.name}`, audit, async (trx) => {
    if (row.parent_name !== null) {
      await serialize(trx, ctx.dialect, 'group-tree');
      const chain = await chainToRoot(trx, row.parent_name);
      if (chain.length === 0) throw new CertfleetError('not-found', `parent group ${row.parent_name} not found`);
      if (chain.length + 1 > MAX_GROUP_DEPTH) throw tooDeep(group.name);
    }
    await trx.insertInto('thing_groups').values(row).execute();
    return groupRecord(row);
  });
}

export async function getGroup(db: Db, name: string): Promise<ThingGroupRecord | undefined> {
  const row = await guarded(`group ${name}`, () =>
    db.selectFrom('thing_groups').select(GROUP_COLUMNS).where('name', '=', name).executeTakeFirst(),
  );
  return row && groupRecord(row);
}

/** Ordered by name. */
export async function listGroups(db: Db, page: PageRequest): Promise<Page<ThingGroupRecord>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? undefined : (decodeCursor('groups', page.cursor, 1)[0] as string);
  const rows = await guarded('group list', () => {
    let select = db.selectFrom('thing_groups').select(GROUP_COLUMNS);
    if (after !== undefined) select = select.where('name', '>', after);
    return select.orderBy('name').limit(page.limit + 1).execute();
  });
  return paged(rows.map(groupRecord), page.limit, 'groups', (g) => g.name);
}

/** Moves a group (with its subtree) under `parent`, or to the top with null. 'invalid-state' on a cycle or a tree too deep. */
export async function setGroupParent(
  ctx: StoreContext,
  name: string,
  parent: string | null,
  audit?: AuditInput,
): Promise<ThingGroupRecord> {
  return write(ctx, `group ${name}`, audit, async (trx) => {
    await serialize(trx, ctx.dialect, 'group-tree');
    if (parent !== null) {
      const chain = await chainToRoot(trx, parent);
      if (chain.length === 0) throw new CertfleetError('not-found', `parent group ${parent} not found`);
      if (chain.includes(name)) throw new CertfleetError('invalid-state', `group ${parent} is ${name} or below it: that would make a cycle`);
      if (chain.length + (await subtreeHeight(trx, name)) > MAX_GROUP_DEPTH) throw tooDeep(name);
    }
    const row = await trx
      .updateTable('thing_groups')
      .set({ parent_name: parent })
      .where('name', '=', name)
      .returning(GROUP_COLUMNS)
      .executeTakeFirst();
    if (row === undefined) throw new CertfleetError('not-found', `group ${name} not found`);
    return groupRecord(row);
  });
}

/** 'invalid-state' while the group has child groups; its memberships and policy attachments go with it. */
export async function deleteGroup(ctx: StoreContext, name: string, audit?: AuditInput): Promise<void> {
  const busy = () => new CertfleetError('invalid-state', `group ${name} has child groups`);
  await write(ctx, `group ${name}`, audit, async (trx) => {
    await serialize(trx, ctx.dialect, 'group-tree');
    // First, so a policy attached concurrently is committed (and removed below) or refused.
    await lockGroup(trx, name);
    const child = await trx.selectFrom('thing_groups').select('name').where('parent_name', '=', name).limit(1).executeTakeFirst();
    if (child !== undefined) throw busy();
    await trx.deleteFrom('thing_group_members').where('group_name', '=', name).execute();
    await trx.deleteFrom('policy_attachments').where('target_type', '=', 'group').where('target_id', '=', name).execute();
    try {
      await trx.deleteFrom('thing_groups').where('name', '=', name).execute();
    } catch (err) {
      // PostgreSQL: a member added by a transaction that committed after our delete of members.
      if (classifyDriverError(err) === 'foreign-key') {
        throw new CertfleetError('invalid-state', `group ${name} gained members while being deleted; retry`);
      }
      throw err;
    }
  });
}

/** 'conflict' if the thing already is a member, 'not-found' if either is missing. */
export async function addThingToGroup(ctx: StoreContext, group: string, thing: string, audit?: AuditInput): Promise<void> {
  const createdAt = toIso(ctx.now(), 'createdAt');
  await write(ctx, `thing ${thing} in group ${group}`, audit, async (trx) => {
    // Looked up first so the error names what is missing; the foreign keys still guard a race.
    if ((await trx.selectFrom('thing_groups').select('name').where('name', '=', group).executeTakeFirst()) === undefined) {
      throw new CertfleetError('not-found', `group ${group} not found`);
    }
    if ((await trx.selectFrom('things').select('name').where('name', '=', thing).executeTakeFirst()) === undefined) {
      throw new CertfleetError('not-found', `thing ${thing} not found`);
    }
    await trx.insertInto('thing_group_members').values({ group_name: group, thing_name: thing, created_at: createdAt }).execute();
  });
}

export async function removeThingFromGroup(ctx: StoreContext, group: string, thing: string, audit?: AuditInput): Promise<void> {
  await write(ctx, `thing ${thing} in group ${group}`, audit, async (trx) => {
    const result = await trx
      .deleteFrom('thing_group_members')
      .where('group_name', '=', group)
      .where('thing_name', '=', thing)
      .executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new CertfleetError('not-found', `thing ${thing} is not in group ${group}`);
  });
}

/** Direct members only, ordered by thing name; 'not-found' for an unknown group. */
export async function listGroupMembers(db: Db, group: string, page: PageRequest): Promise<Page<ThingRecord>> {
  checkLimit(page.limit);
  const kind = 'group-members';
  const after = page.cursor === undefined ? undefined : (decodeCursor(kind, page.cursor, 1)[0] as string);
  const rows = await guarded(`group ${group}`, async () => {
    if ((await db.selectFrom('thing_groups').select('name').where('name', '=', group).executeTakeFirst()) === undefined) {
      throw new CertfleetError('not-found', `group ${group} not found`);
    }
    let select = db
      .selectFrom('thing_group_members as m')
      .innerJoin('things', 'things.name', 'm.thing_name')
      .select(THING_COLUMNS.map((c) => `things.${c}` as const))
      .where('m.group_name', '=', group);
    if (after !== undefined) select = select.where('m.thing_name', '>', after);
    return select.orderBy('m.thing_name').limit(page.limit + 1).execute();
  });
  return paged(rows.map(thingRecord), page.limit, kind, (t) => t.name);
}

/**
 * The thing's groups and every ancestor of them, each once at its smallest
 * depth (0 = direct member), nearest first then by name: the order in which
 * group policies and attributes are inherited.
 */
export async function groupsOfThing(db: Db, thing: string): Promise<ThingGroupAncestor[]> {
  const rows = await guarded(`groups of thing ${thing}`, () =>
    db
      .withRecursive('up(name, depth)', (qb) =>
        qb
          .selectFrom('thing_group_members')
          .select(['group_name as name', sql<number>`0`.as('depth')])
          .where('thing_name', '=', thing)
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
      .selectFrom('up')
      .innerJoin('thing_groups', 'thing_groups.name', 'up.name')
      .select([...GROUP_COLUMNS.map((c) => `thing_groups.${c}` as const), 'up.depth'])
      .execute(),
  );
  const nearest = new Map<string, ThingGroupAncestor>();
  for (const row of rows) {
    const depth = Number(row.depth);
    const seen = nearest.get(row.name);
    if (seen === undefined || depth < seen.depth) nearest.set(row.name, { ...groupRecord(row), depth });
  }
  return [...nearest.values()].sort((a, b) => a.depth - b.depth || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Row-locks the group until commit ('not-found' if missing). PostgreSQL: a
 * no-op UPDATE takes FOR NO KEY UPDATE, so attachPolicy and deleteGroup on the
 * same group run one after the other (SQLite serialises them anyway).
 */
export async function lockGroup(trx: Db, name: string): Promise<void> {
  const result = await trx
    .updateTable('thing_groups')
    .set((eb) => ({ description: eb.ref('description') }))
    .where('name', '=', name)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw new CertfleetError('not-found', `group ${name} not found`);
}

/** [name, its parent, …, its root]; empty if there is no such group. */
async function chainToRoot(trx: Db, name: string): Promise<string[]> {
  const rows = await trx
    .withRecursive('chain(name, parent_name, level)', (qb) =>
      qb
        .selectFrom('thing_groups')
        .select(['name', 'parent_name', sql<number>`0`.as('level')])
        .where('name', '=', name)
        .unionAll((qb) =>
          qb
            .selectFrom('chain')
            .innerJoin('thing_groups as g', 'g.name', 'chain.parent_name')
            .select(['g.name', 'g.parent_name', sql<number>`chain.level + 1`.as('level')])
            .where('chain.level', '<', WALK_LIMIT),
        ),
    )
    .selectFrom('chain')
    .select(['name', 'level'])
    .orderBy('level')
    .execute();
  return rows.map((r) => r.name);
}

/** Levels in the subtree rooted at `name`, itself included (1 for a leaf, 0 if missing). */
async function subtreeHeight(trx: Db, name: string): Promise<number> {
  const row = await trx
    .withRecursive('tree(name, level)', (qb) =>
      qb
        .selectFrom('thing_groups')
        .select(['name', sql<number>`1`.as('level')])
        .where('name', '=', name)
        .unionAll((qb) =>
          qb
            .selectFrom('tree')
            .innerJoin('thing_groups as g', 'g.parent_name', 'tree.name')
            .select(['g.name', sql<number>`tree.level + 1`.as('level')])
            .where('tree.level', '<', WALK_LIMIT),
        ),
    )
    .selectFrom('tree')
    .select((eb) => eb.fn.max('level').as('height'))
    .executeTakeFirst();
  return Number(row?.height ?? 0);
}

function tooDeep(name: string): CertfleetError {
  return new CertfleetError('invalid-state', `group ${name} would be nested deeper than ${MAX_GROUP_DEPTH} levels`);
}

function checkDescription(description: unknown): string | null {
  if (description === undefined || description === null) return null;
  if (typeof description !== 'string') throw new CertfleetError('bad-request', 'group description must be a string');
  return description;
}

function paged<T>(items: T[], limit: number, kind: string, key: (item: T) => string): Page<T> {
  const page = items.slice(0, limit);
  const last = items.length > limit ? page[limit - 1] : undefined;
  return last === undefined ? { items: page } : { items: page, next: encodeCursor(kind, [key(last)]) };
}

function groupRecord(row: ThingGroupsTable): ThingGroupRecord {
  return {
    name: row.name,
    parentName: row.parent_name,
    description: row.description,
    attributes: JSON.parse(row.attributes) as ThingAttributes,
    createdAt: fromIso(row.created_at),
  };
}
