import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore, type CertificateFilter, type CertificateOrder, type CertificateRecord, type Store } from './index.js';
import { openWithRetry } from './test-dialects.js';
import {
  PG_URL,
  T0,
  allBytes,
  at,
  caFixture,
  postgresUnreachable,
  certificateFixture,
  rejectsWith,
  tokenFixture,
  uniqueName,
} from './test-fixtures.js';

const DAY = 86_400_000;

/** The same behaviour is asserted on both dialects: one suite, two databases. */
function runStoreSuite(
  name: string,
  open: () => Promise<Store>,
  options: { skip?: string; cleanup?: () => Promise<void> } = {},
): void {
  describe(name, { skip: options.skip ?? false }, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await options.cleanup?.();
    });

    it('migrates idempotently: a second open of the same database sees the same data', async () => {
      await store.putSetting('opened-by', 'first');
      const second = await open();
      try {
        assert.equal(second.dialect, store.dialect);
        assert.equal(await second.getSetting('opened-by'), 'first');
      } finally {
        await second.close();
      }
      await (await open()).close(); // and a third time, after the second closed
    });

    it('creates a CA with its key in one go and reads them back byte-exact', async () => {
      const ca = caFixture();
      const sealed = allBytes(100);
      await store.createCaWithKey(ca, { keyStore: 'sealed-file', sealed });
      assert.deepEqual(await store.getCa(ca.id), ca);
      assert.deepEqual(await store.getCaByName(ca.name), ca);
      const key = await store.getCaKey(ca.id);
      assert.ok(key && Buffer.isBuffer(key.sealed));
      assert.deepEqual(key, { caId: ca.id, keyStore: 'sealed-file', sealed, createdAt: ca.createdAt });
      assert.ok((await store.listCas()).some((c) => c.id === ca.id));
      await store.setCaStatus(ca.id, 'inactive');
      assert.equal((await store.getCa(ca.id))?.status, 'inactive');
      assert.equal(await store.getCa('no-such-ca'), undefined);
    });

    it('rolls back the CA when its key cannot be stored', async () => {
      const ca = caFixture();
      await rejectsWith(store.createCaWithKey(ca, { keyStore: 'x', sealed: null as unknown as Uint8Array }), 'internal');
      assert.equal(await store.getCa(ca.id), undefined);
      assert.equal(await store.getCaKey(ca.id), undefined);
    });

    it('stores a certificate and finds it by fingerprint and by serial, blobs byte-exact', async () => {
      const issuer = caFixture();
      await store.insertCa(issuer);
      const thing = await store.createThing({ name: uniqueName('pump'), attributes: { site: 'Lyon', 'ünï': '✓' } });
      // A view into a larger buffer: only the viewed bytes may be stored.
      const backing = allBytes(64);
      const der = new Uint8Array(backing.buffer, backing.byteOffset + 7, 200);
      const cert = certificateFixture(issuer.id, { thingName: thing.name, notAfter: new Date('2031-02-03T04:05:06.789Z') });
      await store.insertCertificate({ ...cert, der });
      const expected: CertificateRecord = { ...cert, der: Buffer.from(der), revokedAt: null, revocationReason: null };
      const byId = await store.getCertificate(cert.id);
      assert.ok(byId && Buffer.isBuffer(byId.der));
      assert.deepEqual(byId, expected);
      assert.deepEqual(await store.getCertificateBySerial(cert.serial), expected);
      assert.equal(await store.getCertificate('0'.repeat(64)), undefined);
      assert.deepEqual((await store.getThing(thing.name))?.attributes, { site: 'Lyon', 'ünï': '✓' });
    });

    it('refuses duplicates with conflict', async () => {
      const issuer = caFixture();
      await store.createCaWithKey(issuer, { keyStore: 'sealed-file', sealed: allBytes() });
      const cert = certificateFixture(issuer.id);
      await store.insertCertificate(cert);
      const token = tokenFixture();
      await store.insertToken(token);
      const thing = uniqueName('thing');
      await store.createThing({ name: thing });
      const serial = randomBytes(16).toString('hex');
      await store.recordIntent({ serial, issuerId: issuer.id, profile: 'device', tbsDer: allBytes(), createdAt: T0 });
      const cases: Array<[string, () => Promise<unknown>]> = [
        ['same certificate serial', () => store.insertCertificate(certificateFixture(issuer.id, { serial: cert.serial }))],
        ['same fingerprint', () => store.insertCertificate({ ...cert, serial: randomBytes(16).toString('hex') })],
        ['journal serial recorded twice', () =>
          store.recordIntent({ serial, issuerId: issuer.id, profile: 'other', tbsDer: allBytes(), createdAt: T0 })],
        ['thing name', () => store.createThing({ name: thing })],
        ['CA name', () => store.insertCa(caFixture({ name: issuer.name }))],
        ['second CA key', () => store.putCaKey(issuer.id, 'pkcs11', allBytes())],
        ['token hash', () => store.insertToken(tokenFixture({ tokenHash: token.tokenHash }))],
      ];
      for (const [label, attempt] of cases) {
        await rejectsWith(attempt(), 'conflict', /already exists/).catch((err: unknown) => {
          throw new Error(`${label}: ${String(err)}`, { cause: err });
        });
      }
      assert.equal(await store.hasSerial(serial), true);
      assert.equal(await store.hasSerial('never-recorded'), false);
    });

    it('refuses references to missing rows with not-found', async () => {
      const issuer = caFixture();
      await store.insertCa(issuer);
      const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
        ['certificate for a missing thing', () =>
          store.insertCertificate(certificateFixture(issuer.id, { thingName: 'ghost' })), /thing ghost/],
        ['certificate from a missing issuer', () =>
          store.insertCertificate(certificateFixture('ghost-ca')), /issuer CA ghost-ca/],
        ['CA under a missing parent', () => store.insertCa(caFixture({ parentId: 'ghost-ca' })), /does not exist/],
        ['key for a missing CA', () => store.putCaKey('ghost-ca', 'sealed-file', allBytes()), /does not exist/],
        ['status of a missing CA', () => store.setCaStatus('ghost-ca', 'revoked'), /not found/],
        ['revoking a missing token', () => store.revokeToken('ghost-token'), /not found/],
      ];
      for (const [label, attempt, message] of cases) {
        await rejectsWith(attempt(), 'not-found', message).catch((err: unknown) => {
          throw new Error(`${label}: ${String(err)}`, { cause: err });
        });
      }
    });

    describe('listing certificates', () => {
      const issuer = caFixture();
      const things = [uniqueName('thing-a'), uniqueName('thing-b')];
      const certs: CertificateRecord[] = [];
      before(async () => {
        await store.insertCa(issuer);
        for (const name of things) await store.createThing({ name });
        for (let i = 0; i < 25; i += 1) {
          const cert = certificateFixture(issuer.id, {
            // Groups of three share created_at, so the id tie-break is exercised.
            createdAt: at(Math.floor(i / 3) * 1000),
            notAfter: at((Math.floor(i / 2) + 1) * DAY), // pairs share not_after: the id tie-break again
            status: i % 4 === 0 ? 'revoked' : 'active',
            thingName: i % 2 === 0 ? (things[0] ?? null) : i % 5 === 0 ? (things[1] ?? null) : null,
          });
          await store.insertCertificate(cert);
          certs.push({ ...cert, der: Buffer.from(cert.der), revokedAt: null, revocationReason: null });
        }
      });

      const orderBy = (field: 'createdAt' | 'notAfter') => (a: CertificateRecord, b: CertificateRecord): number => {
        const x = a[field].toISOString() + a.id;
        const y = b[field].toISOString() + b.id;
        return x < y ? -1 : x > y ? 1 : 0; // byte order, as both dialects compare
      };
      const order = orderBy('createdAt');

      async function pageThrough(filter: CertificateFilter, limit: number): Promise<string[]> {
        const ids: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 100; pages += 1) {
          const page = await store.listCertificates({ ...filter, limit, ...(cursor ? { cursor } : {}) });
          assert.ok(page.items.length <= limit);
          ids.push(...page.items.map((c) => c.id));
          if (page.next === undefined) return ids;
          cursor = page.next;
        }
        throw new Error('pagination did not end');
      }

      const cases: Array<[string, CertificateFilter & { order?: CertificateOrder }, (c: CertificateRecord) => boolean]> = [
        ['no filter', {}, () => true],
        ['status revoked', { status: 'revoked' }, (c) => c.status === 'revoked'],
        ['thing', { thing: things[0] }, (c) => c.thingName === things[0]],
        ['expiring before day 10', { expiringBefore: at(10 * DAY) }, (c) => c.notAfter < at(10 * DAY)],
        ['active on thing-b', { status: 'active', thing: things[1] }, (c) => c.status === 'active' && c.thingName === things[1]],
        ['active expiring before day 20', { status: 'active', expiringBefore: at(20 * DAY) },
          (c) => c.status === 'active' && c.notAfter < at(20 * DAY)],
        ['expiring before day 8, by creation', { expiringBefore: at(8 * DAY), order: 'created' }, (c) => c.notAfter < at(8 * DAY)],
        ['revoked, by expiry', { status: 'revoked', order: 'expiry' }, (c) => c.status === 'revoked'],
      ];
      for (const [label, filter, keep] of cases) {
        it(`filters: ${label}, across pages without duplicates or gaps`, async () => {
          // Expiry order by default when filtering on expiry (records.ts, CertificateOrder).
          const byExpiry = (filter.order ?? (filter.expiringBefore ? 'expiry' : 'created')) === 'expiry';
          const expected = certs.filter(keep).sort(orderBy(byExpiry ? 'notAfter' : 'createdAt')).map((c) => c.id);
          for (const limit of [1, 4, 1000]) {
            assert.deepEqual(await pageThrough({ ...filter, issuerId: issuer.id }, limit), expected, `limit ${limit}`);
          }
          assert.equal(await store.countCertificates({ ...filter, issuerId: issuer.id }), expected.length);
        });
      }

      it('returns full records, and nothing for another issuer', async () => {
        const page = await store.listCertificates({ issuerId: issuer.id, limit: 2 });
        assert.deepEqual(page.items, [...certs].sort(order).slice(0, 2));
        assert.deepEqual(await store.listCertificates({ issuerId: 'ghost-ca', limit: 10 }), { items: [] });
        assert.ok((await store.countCertificates()) >= certs.length);
      });

      it('refuses bad cursors and limits with bad-request', async () => {
        const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
        const thingsCursor = (await store.listThings({ limit: 1 })).next;
        assert.ok(thingsCursor);
        const badCursors = ['', 'not base64!', b64({ a: 1 }), b64(['certificates', 'x']),
          b64(['certificates', 'yesterday', 'id']), b64(['certificates', 1, 2]), thingsCursor, 'A'.repeat(2000)];
        for (const cursor of badCursors) {
          await rejectsWith(store.listCertificates({ limit: 10, cursor }), 'bad-request', /cursor/);
        }
        // A cursor is only valid for the order it came from.
        const createdCursor = (await store.listCertificates({ limit: 1 })).next;
        await rejectsWith(store.listCertificates({ limit: 1, order: 'expiry', cursor: createdCursor ?? '' }), 'bad-request', /cursor/);
        for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
          await rejectsWith(store.listCertificates({ limit }), 'bad-request', /limit/);
        }
      });
    });

    it('lists things by name across pages', async () => {
      const prefix = uniqueName('fleet');
      const names = ['c', 'a', 'b', 'e', 'd'].map((s) => `${prefix}-${s}`);
      for (const name of names) await store.createThing({ name });
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listThings({ limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((t) => t.name));
        cursor = page.next;
      } while (cursor !== undefined);
      assert.deepEqual(seen.filter((n) => n.startsWith(prefix)), [...names].sort());
      assert.equal(new Set(seen).size, seen.length);
      await rejectsWith(store.createThing({ name: uniqueName('x'), attributes: { n: 1 as unknown as string } }), 'bad-request');
    });

    it('finds tokens by hash, revokes them once, and touches them coarsely', async () => {
      const token = tokenFixture();
      await store.insertToken(token);
      const found = await store.findTokenByHash(token.tokenHash);
      assert.deepEqual(found, { ...token, revokedAt: null, lastUsedAt: null });
      assert.equal(await store.findTokenByHash('0'.repeat(64)), undefined);
      await store.touchToken(token.id, at(1000));
      await store.touchToken(token.id, at(2000)); // within a minute: not written
      assert.deepEqual((await store.findTokenByHash(token.tokenHash))?.lastUsedAt, at(1000));
      await store.touchToken(token.id, at(62_000));
      assert.deepEqual((await store.findTokenByHash(token.tokenHash))?.lastUsedAt, at(62_000));
      await store.revokeToken(token.id, at(5 * DAY));
      await store.revokeToken(token.id, at(6 * DAY)); // idempotent: keeps the first time
      assert.deepEqual((await store.findTokenByHash(token.tokenHash))?.revokedAt, at(5 * DAY));
      assert.ok((await store.listTokens()).some((t) => t.id === token.id && t.revokedAt !== null));
      await rejectsWith(store.insertToken(tokenFixture({ scopes: ['a,b'] })), 'bad-request');
    });

    it('reads and overwrites settings', async () => {
      assert.equal(await store.getSetting('missing'), undefined);
      await store.putSetting('crl.next-number', '1');
      await store.putSetting('crl.next-number', '2 ✓');
      assert.equal(await store.getSetting('crl.next-number'), '2 ✓');
    });
  });
}

// SQLite: always, in a fresh temporary file.
const sqliteDir = mkdtempSync(join(tmpdir(), 'certfleet-store-'));
runStoreSuite('store on SQLite', () => openStore(join(sqliteDir, 'certfleet.db')), {
  cleanup: async () => rmSync(sqliteDir, { recursive: true, force: true }),
});

// PostgreSQL: in a fresh random schema, dropped afterwards; skipped, visibly, when no server answers.
const pgSchema = `certfleet_test_${randomBytes(6).toString('hex')}`;
runStoreSuite('store on PostgreSQL', () => openWithRetry(() => openStore(PG_URL, { schema: pgSchema })), {
  ...(await postgresUnreachable()),
  cleanup: async () => {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    await client.connect();
    await client.query(`drop schema if exists ${pgSchema} cascade`);
    await client.end();
  },
});
