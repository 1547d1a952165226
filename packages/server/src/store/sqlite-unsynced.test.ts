import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, sql, type Generated } from 'kysely';
import { openStore } from './index.js';
import { ImmediateSqliteDialect, openSqliteDatabase, sqliteDurability, unsyncedTransaction } from './sqlite.js';

interface Db {
  t: { id: Generated<number>; name: string };
}

const dir = mkdtempSync(join(tmpdir(), 'certfleet-unsynced-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function open(): Promise<Kysely<Db>> {
  const db = new Kysely<Db>({ dialect: new ImmediateSqliteDialect({ database: openSqliteDatabase(join(dir, `${n++}.db`)) }) });
  await sql`create table t (id integer primary key, name text not null)`.execute(db);
  return db;
}

/** 2 is FULL, 1 NORMAL (https://www.sqlite.org/pragma.html#pragma_synchronous). */
async function synchronous(db: Kysely<Db>): Promise<number> {
  const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(db);
  return rows[0]!.synchronous;
}

describe('unsyncedTransaction on SQLite', () => {
  it('commits at synchronous=NORMAL and puts FULL back', async () => {
    const db = await open();
    assert.equal(await synchronous(db), 2);
    const inside = await unsyncedTransaction(db, async (trx) => {
      await trx.insertInto('t').values({ name: 'a' }).execute();
      return synchronous(trx);
    });
    assert.equal(inside, 1);
    assert.equal(await synchronous(db), 2);
    assert.deepEqual(await db.selectFrom('t').select('name').execute(), [{ name: 'a' }]);
    await db.destroy();
  });

  it('never lends the connection at NORMAL to anyone else: a write meanwhile waits and commits at FULL', async () => {
    const db = await open();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const unsynced = unsyncedTransaction(db, async (trx) => {
      await trx.insertInto('t').values({ name: 'record' }).execute();
      await held;
    });
    await sleep(10);
    // An acknowledged write issued while the unsynced transaction is open.
    const acknowledged = db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ name: 'acknowledged' }).execute();
      return synchronous(trx);
    });
    await sleep(10);
    release();
    await unsynced;
    assert.equal(await acknowledged, 2);
    assert.deepEqual((await db.selectFrom('t').select('name').orderBy('id').execute()).map((r) => r.name), ['record', 'acknowledged']);
    await db.destroy();
  });

  it('rolls back when the work fails and still puts FULL back', async () => {
    const db = await open();
    await assert.rejects(
      unsyncedTransaction(db, async (trx) => {
        await trx.insertInto('t').values({ name: 'lost' }).execute();
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await synchronous(db), 2);
    assert.deepEqual(await db.selectFrom('t').select('name').execute(), []);
    await db.destroy();
  });

  it('inside a caller\'s transaction it is that transaction, which keeps FULL', async () => {
    const db = await open();
    const inside = await db.transaction().execute((trx) =>
      unsyncedTransaction<Db, number>(trx, async (t) => {
        await t.insertInto('t').values({ name: 'x' }).execute();
        return synchronous(t);
      }),
    );
    assert.equal(inside, 2);
    await db.destroy();
  });

  it('many batches interleaved with ordinary writes end with FULL and every row', async () => {
    const db = await open();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? unsyncedTransaction(db, (trx) => trx.insertInto('t').values({ name: `r${i}` }).execute())
          : db.insertInto('t').values({ name: `a${i}` }).execute(),
      ),
    );
    assert.equal(await synchronous(db), 2);
    assert.equal((await db.selectFrom('t').select('id').execute()).length, 40);
    await db.destroy();
  });
});

describe('connection records on SQLite', () => {
  it('survive a SIGKILL of the process, and so do the acknowledged writes committed between them', async () => {
    const path = join(dir, 'killed.db');
    const index = pathToFileURL(fileURLToPath(new URL('./index.ts', import.meta.url))).href;
    const script = `
      import { openStore } from ${JSON.stringify(index)};
      const store = await openStore(${JSON.stringify(path)});
      const at = new Date();
      const connect = (id) => ({ kind: 'connect', connection: { id, certificateId: 'cert-1', clientId: id, remoteAddress: '192.0.2.1:1', connectedAt: at, nodeId: 'node-a' } });
      await Promise.all([
        store.recordConnectionWrites([connect('c1'), connect('c2')]),
        store.putSetting('acknowledged', 'yes'),
        store.recordConnectionWrites([{ kind: 'disconnect', id: 'c1', at, reason: 'client-disconnect' }]),
      ]);
      process.stdout.write('written\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not write: ${stderr}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('written')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
    });
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const store = await openStore(path);
    try {
      assert.equal(await store.getSetting('acknowledged'), 'yes');
      const { items } = await store.listConnections({ certificateId: 'cert-1', limit: 10 });
      assert.deepEqual(items.map((c) => [c.id, c.disconnectReason]).sort(), [['c1', 'client-disconnect'], ['c2', null]]);
    } finally {
      await store.close();
    }
    // The file a new connection opens is configured as before: FULL.
    const raw = openSqliteDatabase(path);
    assert.equal(sqliteDurability(raw).synchronous, 2);
    raw.close();
  });
});
