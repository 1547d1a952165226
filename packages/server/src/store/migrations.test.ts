import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { openStore } from './index.js';
import { migrations } from './migrations/index.js';
import { createPool, prepareSchema } from './postgres.js';
import type { Database, StoreDialect } from './schema.js';
import { openSqliteDatabase } from './sqlite.js';
import { PG_URL, T0, caFixture, certificateFixture, dropTestSchema, postgresUnreachable } from './test-fixtures.js';

/*
 * Schema v1 -> v2 on a database holding v1 data (expand: v1 rows stay valid
 * and get the new columns' defaults), and v2 -> v1 -> v2 through down().
 */

const dir = mkdtempSync(join(tmpdir(), 'certfleet-migrations-'));
const schemas: string[] = [];
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const schema of schemas) await dropTestSchema(schema);
});

interface Target {
  url: string;
  schema?: string;
  kysely(): Promise<Kysely<Database>>;
}

function sqliteTarget(): Target {
  const path = join(dir, `${randomBytes(4).toString('hex')}.db`);
  return {
    url: path,
    kysely: async () => new Kysely<Database>({ dialect: new SqliteDialect({ database: openSqliteDatabase(path) }) }),
  };
}

function postgresTarget(): Target {
  const schema = `certfleet_test_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return {
    url: PG_URL,
    schema,
    kysely: async () => {
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(PG_URL, schema) }) });
      await prepareSchema(db, schema);
      return db;
    },
  };
}

async function migrateTo(target: Target, dialect: StoreDialect, name: string): Promise<void> {
  const db = await target.kysely();
  try {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => migrations({ dialect }) },
      ...(target.schema === undefined ? {} : { migrationTableSchema: target.schema }),
    });
    const { error } = await migrator.migrateTo(name);
    if (error !== undefined) throw error;
  } finally {
    await db.destroy();
  }
}

const postgres = await postgresUnreachable();
for (const [dialect, make, skip] of [
  ['sqlite', sqliteTarget, false],
  ['postgres', postgresTarget, postgres.skip ?? false],
] as const) {
  describe(`schema migrations on ${dialect}`, { skip }, () => {
    it('upgrades a v1 database with data to v2, and v2 goes down to v1 and up again', async () => {
      const target = make();
      await migrateTo(target, dialect, '001_initial');
      const ca = caFixture();
      const cert = certificateFixture(ca.id);
      const v1 = await target.kysely();
      try {
        const { certificateDer, notBefore, notAfter, createdAt, ...rest } = ca;
        await v1.insertInto('cas').values({
          id: rest.id, name: rest.name, parent_id: null, kind: rest.kind, status: rest.status, key_algorithm: rest.keyAlgorithm,
          subject: rest.subject, serial: rest.serial, certificate_der: Buffer.from(certificateDer), not_before: notBefore.toISOString(),
          not_after: notAfter.toISOString(), path_len: rest.pathLen, created_at: createdAt.toISOString(),
        }).execute();
      } finally {
        await v1.destroy();
      }

      const store = await openStore(target.url, target.schema === undefined ? {} : { schema: target.schema });
      try {
        assert.deepEqual(await store.getCa(ca.id), ca);
        assert.deepEqual(await store.getCaProvisioning(ca.id), { caId: ca.id, autoRegistration: false, provisioningTemplate: null });
        await store.insertCertificate(cert);
        assert.equal((await store.certificateHistory(cert.id)).length, 1);
        await store.appendAudit({ actor: 'a', action: 'b', target: 'c', at: T0 });
      } finally {
        await store.close();
      }

      await migrateTo(target, dialect, '001_initial');
      const reopened = await openStore(target.url, target.schema === undefined ? {} : { schema: target.schema });
      try {
        assert.equal((await reopened.getCertificate(cert.id))?.id, cert.id, 'v1 data kept through down()');
        assert.deepEqual(await reopened.verifyAuditLog(), { ok: true, entries: 0, head: null }, 'v2 tables recreated empty');
      } finally {
        await reopened.close();
      }
    });
  });
}
