import { CertfleetError } from '../errors.js';
import { fromIso, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import type { NewThing, Page, PageRequest, ThingAttributes, ThingRecord } from './records.js';
import type { Db, ThingsTable } from './schema.js';

/* SQL for `things`. */

const THING_COLUMNS = ['name', 'attributes', 'created_at', 'updated_at'] as const;
const CURSOR_KIND = 'things';

export async function createThing(db: Db, thing: NewThing, now: Date): Promise<ThingRecord> {
  const attributes = checkAttributes(thing.attributes ?? {});
  const at = toIso(now, 'createdAt');
  const row: ThingsTable = { name: thing.name, attributes: JSON.stringify(attributes), created_at: at, updated_at: at };
  await guarded(`thing ${thing.name}`, () => db.insertInto('things').values(row).execute());
  return thingRecord(row);
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
// keeps every reader from having to re-validate it.
function checkAttributes(attributes: unknown): ThingAttributes {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    throw new CertfleetError('bad-request', 'thing attributes must be an object');
  }
  for (const [key, value] of Object.entries(attributes)) {
    if (typeof value !== 'string') {
      throw new CertfleetError('bad-request', `thing attribute ${JSON.stringify(key)} must be a string`);
    }
  }
  return attributes as ThingAttributes;
}

function thingRecord(row: ThingsTable): ThingRecord {
  return {
    name: row.name,
    attributes: JSON.parse(row.attributes) as ThingAttributes,
    createdAt: fromIso(row.created_at),
    updatedAt: fromIso(row.updated_at),
  };
}
