import { CertfleetError } from '../errors.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import type { AuditInput } from './audit-records.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import type { NewThing, Page, PageRequest, ThingAttributes, ThingRecord, ThingUpdate } from './records.js';
import type { Db, ThingsTable } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/* SQL for `things`. */

export const THING_COLUMNS = ['name', 'attributes', 'created_at', 'updated_at'] as const;
const CURSOR_KIND = 'things';

export async function createThing(ctx: StoreContext, thing: NewThing, audit?: AuditInput): Promise<ThingRecord> {
  const attributes = checkAttributes(thing.attributes ?? {}, 'thing');
  const at = toIso(ctx.now(), 'createdAt');
  const row: ThingsTable = { name: thing.name, attributes: JSON.stringify(attributes), created_at: at, updated_at: at };
  await write(ctx, `thing ${thing.name}`, audit, (trx) => trx.insertInto('things').values(row).execute());
  return thingRecord(row);
}

/** Replaces the attributes; 'not-found' if there is no such thing. */
export async function updateThing(
  ctx: StoreContext,
  name: string,
  update: ThingUpdate,
  audit?: AuditInput,
): Promise<ThingRecord> {
  const attributes = JSON.stringify(checkAttributes(update.attributes, 'thing'));
  const at = toIso(ctx.now(), 'updatedAt');
  return write(ctx, `thing ${name}`, audit, async (trx) => {
    const row = await trx
      .updateTable('things')
      .set({ attributes, updated_at: at })
      .where('name', '=', name)
      .returning(THING_COLUMNS)
      .executeTakeFirst();
    if (row === undefined) throw new CertfleetError('not-found', `thing ${name} not found`);
    return thingRecord(row);
  });
}

/**
 * 'invalid-state' while any certificate (whatever its status) names the
 * thing: it must be detached first, so no certificate is left pointing at a
 * device that no longer exists. Group memberships go with the thing.
 */
export async function deleteThing(ctx: StoreContext, name: string, audit?: AuditInput): Promise<void> {
  const attached = () => new CertfleetError('invalid-state', `thing ${name} still has certificates attached`);
  await write(ctx, `thing ${name}`, audit, async (trx) => {
    const certificate = await trx
      .selectFrom('certificates')
      .select('id')
      .where('thing_name', '=', name)
      .limit(1)
      .executeTakeFirst();
    if (certificate !== undefined) throw attached();
    await trx.deleteFrom('thing_group_members').where('thing_name', '=', name).execute();
    try {
      const result = await trx.deleteFrom('things').where('name', '=', name).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw new CertfleetError('not-found', `thing ${name} not found`);
    } catch (err) {
      // PostgreSQL: a certificate or group membership added by a transaction
      // that committed after our check (the delete waited for its row lock).
      if (classifyDriverError(err) === 'foreign-key') {
        throw new CertfleetError('invalid-state', `thing ${name} gained a certificate or group while being deleted; retry`);
      }
      throw err;
    }
  });
}

export async function getThing(db: Db, name: string): Promise<ThingRecord | undefined> {
  const row = await guarded(`thing ${name}`, () =>
    db.selectFrom('things').select(THING_COLUMNS).where('name', '=', name).executeTakeFirst(),
  );
  return row && thingRecord(row);
}

/** Keyset pagination on the primary key. */
export async function listThings(db: Db, page: PageRequest): Promise<Page<ThingRecord>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? undefined : (decodeCursor(CURSOR_KIND, page.cursor, 1)[0] as string);
  const rows = await guarded('thing list', () => {
    let select = db.selectFrom('things').select(THING_COLUMNS);
    if (after !== undefined) select = select.where('name', '>', after);
    return select.orderBy('name').limit(page.limit + 1).execute();
  });
  const items = rows.slice(0, page.limit).map(thingRecord);
  const last = rows.length > page.limit ? rows[page.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(CURSOR_KIND, [last.name]) };
}

// The column promises a JSON object of strings; refusing anything else here
// keeps every reader from having to re-validate it. Shared with thing groups.
export function checkAttributes(attributes: unknown, owner: 'thing' | 'group'): ThingAttributes {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    throw new CertfleetError('bad-request', `${owner} attributes must be an object`);
  }
  for (const [key, value] of Object.entries(attributes)) {
    if (typeof value !== 'string') {
      throw new CertfleetError('bad-request', `${owner} attribute ${JSON.stringify(key)} must be a string`);
    }
  }
  return attributes as ThingAttributes;
}

export function thingRecord(row: ThingsTable): ThingRecord {
  return {
    name: row.name,
    attributes: JSON.parse(row.attributes) as ThingAttributes,
    createdAt: fromIso(row.created_at),
    updatedAt: fromIso(row.updated_at),
  };
}
