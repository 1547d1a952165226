import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { CachedStatements, ImmediateSqliteDialect } from './sqlite.js';

interface Db {
  t: { id: number; name: string };
}

/** A database whose prepare() calls are counted. */
function counted(): { db: Database.Database; prepared: () => number } {
  const db = new Database(':memory:');
  let n = 0;
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    n++;
    return prepare(source);
  }) as typeof db.prepare;
  return { db, prepared: () => n };
}

describe('CachedStatements', () => {
  it('prepares each SQL text once', () => {
    const { db, prepared } = counted();
    const cache = new CachedStatements(db);
    const a = cache.prepare('select 1 as x');
    const b = cache.prepare('select 1 as x');
    assert.equal(a, b);
    assert.equal(prepared(), 1);
    assert.deepEqual(a.all([]), [{ x: 1 }]);
    cache.close();
  });

  it('gives a statement in the middle of an iteration a fresh one for the same SQL', () => {
    const { db } = counted();
    db.exec('create table t (id integer primary key, name text); insert into t (name) values (\'a\'), (\'b\')');
    const cache = new CachedStatements(db);
    const first = cache.prepare('select id from t order by id');
    const it = first.iterate([]);
    const row = it.next();
    assert.equal(row.done, false);
    const second = cache.prepare('select id from t order by id');
    assert.notEqual(second, first);
    assert.deepEqual(second.all([]), [{ id: 1 }, { id: 2 }]);
    it.return?.();
    cache.close();
  });
});

describe('ImmediateSqliteDialect with prepared statements kept', () => {
  it('runs the same queries with their own parameters, and sees a schema change', async () => {
    const { db, prepared } = counted();
    const k = new Kysely<Db>({ dialect: new ImmediateSqliteDialect({ database: db }) });
    await sql`create table t (id integer primary key, name text not null)`.execute(k);
    for (const name of ['a', 'b', 'c']) await k.insertInto('t').values({ name } as Db['t']).execute();
    const before = prepared();
    for (const id of [1, 2, 3]) {
      const row = await k.selectFrom('t').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      assert.equal(row.name, ['a', 'b', 'c'][id - 1]);
    }
    assert.equal(prepared() - before, 1, 'one prepare for three runs of the same select');
    await sql`alter table t add column extra text default 'x'`.execute(k);
    const row = await k.selectFrom('t').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
    assert.deepEqual(row, { id: 1, name: 'a', extra: 'x' }, 'SQLite re-prepares a kept statement after the schema changed');
    await k.transaction().execute(async (tx) => {
      await tx.updateTable('t').set({ name: 'z' }).where('id', '=', 1).execute();
    });
    assert.equal((await k.selectFrom('t').select('name').where('id', '=', 1).executeTakeFirstOrThrow()).name, 'z');
    await k.destroy();
    assert.equal(db.open, false);
  });
});
