import { guarded } from './driver-errors.js';
import type { Db } from './schema.js';

/* SQL for `settings`, a small key/value table for instance-wide values. */

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  const row = await guarded(`setting ${key}`, () =>
    db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst(),
  );
  return row?.value;
}

/** Upsert in one statement (ON CONFLICT works the same on SQLite >= 3.24 and PostgreSQL). */
export async function putSetting(db: Db, key: string, value: string): Promise<void> {
  await guarded(`setting ${key}`, () =>
    db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute(),
  );
}
