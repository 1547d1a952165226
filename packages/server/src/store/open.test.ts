import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { openStore } from './index.js';
import { parseStoreUrl, type StoreLocation } from './open.js';
import { openSqliteDatabase, sqliteDurability } from './sqlite.js';
import { PG_URL, T0, allBytes, postgresUnreachable, rejectsWith } from './test-fixtures.js';

describe('parseStoreUrl', () => {
  const cases: Array<[string, StoreLocation]> = [
    ['postgres://u@h:5432/db', { dialect: 'postgres', url: 'postgres://u@h:5432/db' }],
    ['postgresql://u@h/db?sslmode=require', { dialect: 'postgres', url: 'postgresql://u@h/db?sslmode=require' }],
    ['./certfleet-data/certfleet.db', { dialect: 'sqlite', path: './certfleet-data/certfleet.db' }],
    ['sqlite:/var/lib/certfleet/db.sqlite', { dialect: 'sqlite', path: '/var/lib/certfleet/db.sqlite' }],
    [':memory:', { dialect: 'sqlite', path: ':memory:' }],
  ];
  for (const [url, expected] of cases) {
    it(`reads ${url}`, () => assert.deepEqual(parseStoreUrl(url), expected));
  }
  for (const url of ['', 'sqlite:', 'mysql://root@localhost/db', 'sqlite:http://x/y']) {
    it(`refuses ${JSON.stringify(url)}`, async () => {
      await rejectsWith(Promise.resolve().then(() => parseStoreUrl(url)), 'bad-request');
    });
  }
});

describe('openStore failures', () => {
  it('reports an unreachable PostgreSQL as unavailable', async () => {
    await rejectsWith(openStore('postgres://postgres@127.0.0.1:1/test'), 'unavailable');
  });
  it('reports a SQLite file in a missing directory as unavailable', async () => {
    await rejectsWith(openStore(join(tmpdir(), 'certfleet-no-such-dir', 'x', 'db')), 'unavailable');
  });
  it('refuses a schema name that is not a plain identifier', async () => {
    await rejectsWith(openStore('postgres://postgres@127.0.0.1:1/test', { schema: 'x; drop' }), 'bad-request');
  });
  it('opens an in-memory SQLite store', async () => {
    const store = await openStore(':memory:');
    await store.putSetting('k', 'v');
    assert.equal(await store.getSetting('k'), 'v');
    await store.close();
    await store.close(); // idempotent
  });
});

describe('PostgreSQL durability', await postgresUnreachable(), () => {
  it('refuses a server that acknowledges commits before they are on disk', async () => {
    const url = new URL(PG_URL);
    url.searchParams.set('options', '-c synchronous_commit=off');
    await rejectsWith(openStore(url.href), 'unavailable', /synchronous_commit/);
  });
});

describe('SQLite durability', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'certfleet-durability-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('opens with WAL, synchronous=FULL, foreign keys and a busy timeout', () => {
    const db = openSqliteDatabase(join(dir, 'pragmas.db'));
    try {
      // synchronous: 2 is FULL (https://www.sqlite.org/pragma.html#pragma_synchronous).
      assert.deepEqual(sqliteDurability(db), { journalMode: 'wal', synchronous: 2, foreignKeys: 1, busyTimeout: 5000 });
    } finally {
      db.close();
    }
  });

  it('keeps acknowledged writes when the process is killed with SIGKILL before any checkpoint', async () => {
    const path = join(dir, 'killed.db');
    const tbsDer = allBytes();
    await writeThenKill(path, tbsDer);
    // The process never closed the database: the data lives only in the WAL.
    assert.ok(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0, 'WAL left behind');
    const store = await openStore(path);
    try {
      assert.equal((await store.getThing('survivor'))?.name, 'survivor');
      assert.equal(await store.hasSerial('0abc'), true);
      assert.equal(await store.getSetting('acknowledged'), 'yes');
    } finally {
      await store.close();
    }
  });

  it('opens a database migrated by a newer version (rolling upgrade)', async () => {
    const path = join(dir, 'newer.db');
    await (await openStore(path)).close();
    const raw = new Database(path);
    raw.prepare('insert into kysely_migration (name, timestamp) values (?, ?)').run('999_future', T0.toISOString());
    raw.close();
    const store = await openStore(path);
    await store.putSetting('still', 'works');
    assert.equal(await store.getSetting('still'), 'works');
    await store.close();
  });
});

/**
 * Runs a child process that writes through the store, prints "acknowledged"
 * once every write has resolved, and is then killed with SIGKILL: no close(),
 * no checkpoint, no exit handlers.
 */
async function writeThenKill(path: string, tbsDer: Buffer): Promise<void> {
  const index = pathToFileURL(fileURLToPath(new URL('./index.ts', import.meta.url))).href;
  const script = `
    import { openStore } from ${JSON.stringify(index)};
    const store = await openStore(${JSON.stringify(path)});
    await store.createThing({ name: 'survivor' });
    await store.recordIntent({ serial: '0abc', issuerId: 'ca-1', profile: 'device',
      tbsDer: Buffer.from(${JSON.stringify(tbsDer.toString('base64'))}, 'base64'), createdAt: new Date() });
    await store.putSetting('acknowledged', 'yes');
    process.stdout.write('acknowledged\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not acknowledge: ${stderr}`)), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('acknowledged')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
  });
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
}
