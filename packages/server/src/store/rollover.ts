import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { fromIso, toBlob, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import type { Page, PageRequest } from './records.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for issuer rotation and trust-anchor rollover (schema 009):
 * `ca_cross_certificates`, `trust_bundle_versions`, `trust_bundle_acks`, and
 * the reads over `certificates` those flows need (dependents of a CA, things
 * that still hold an active certificate).
 */

// A type, not an interface: Kysely's withTables() needs an index signature.
export type CrossCertificateTables = {
  ca_cross_certificates: {
    id: string;
    ca_id: string;
    signed_by: string;
    serial: string;
    der: Buffer;
    not_before: string;
    not_after: string;
    created_at: string;
  };
  trust_bundle_versions: { version: number; roots: string; created_at: string };
  trust_bundle_acks: { thing_name: string; version: number; acknowledged_at: string };
};

export interface CrossCertificateRecord {
  /** SHA-256 of the DER, lowercase hex. */
  readonly id: string;
  /** The CA whose subject and key it certifies. */
  readonly caId: string;
  /** The CA that signed it (an older root). */
  readonly signedBy: string;
  readonly serial: string;
  readonly der: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly createdAt: Date;
}

export interface DependentCertificate {
  readonly id: string;
  readonly serial: string;
  readonly issuerId: string;
  readonly thingName: string | null;
  readonly subject: string;
  readonly notAfter: Date;
}

export interface TrustBundleVersionRecord {
  readonly version: number;
  /** CA ids, in bundle order. */
  readonly roots: readonly string[];
  readonly createdAt: Date;
}

/** Issuer rotation: cross certificates and what still depends on a CA (lifecycle/issuer-rotation.ts). */
export interface IssuerRotationStore {
  /** 'conflict' on a duplicate, 'not-found' for an unknown CA. */
  insertCrossCertificate(cross: CrossCertificateRecord, audit?: AuditInput): Promise<void>;
  /** Oldest first. */
  crossCertificatesOf(caId: string): Promise<CrossCertificateRecord[]>;
  /** Active certificates issued by any of `issuerIds`, in issuer then id order. */
  listDependents(issuerIds: readonly string[], page: PageRequest): Promise<Page<DependentCertificate>>;
  countDependents(issuerIds: readonly string[]): Promise<number>;
}

/** The versioned trust bundle and each thing's acknowledgement (lifecycle/trust-bundle.ts). */
export interface TrustBundleStore {
  latestTrustBundle(): Promise<TrustBundleVersionRecord | undefined>;
  /** Every version, oldest first (a bundle changes a few times in a CA's life). */
  trustBundleVersions(): Promise<TrustBundleVersionRecord[]>;
  /** Writes version `previous + 1`; 'conflict' if another change wrote it first. */
  appendTrustBundleVersion(previous: number, roots: readonly string[], audit?: AuditInput): Promise<TrustBundleVersionRecord>;
  /** Keeps the highest version a thing acknowledged; returns it. */
  acknowledgeTrustBundle(thing: string, version: number, at: Date): Promise<number>;
  /** The highest version the thing acknowledged, or undefined. */
  trustBundleAckOf(thing: string): Promise<number | undefined>;
  /** Things with an active certificate whose acknowledged version is not one of `versions`. */
  countThingsNotAcknowledging(versions: readonly number[]): Promise<number>;
  listThingsNotAcknowledging(versions: readonly number[], page: PageRequest): Promise<Page<string>>;
  /** Things with at least one active certificate, by name. */
  thingsWithActiveCertificates(page: PageRequest): Promise<Page<string>>;
  countThingsWithActiveCertificates(): Promise<number>;
}

const tables = (db: Db) => db.withTables<CrossCertificateTables>();

export async function insertCrossCertificate(ctx: StoreContext, c: CrossCertificateRecord, audit?: AuditInput): Promise<void> {
  await write(ctx, `cross certificate of CA ${c.caId}`, audit, (trx) =>
    tables(trx)
      .insertInto('ca_cross_certificates')
      .values({
        id: c.id,
        ca_id: c.caId,
        signed_by: c.signedBy,
        serial: c.serial,
        der: toBlob(c.der),
        not_before: toIso(c.notBefore, 'notBefore'),
        not_after: toIso(c.notAfter, 'notAfter'),
        created_at: toIso(c.createdAt, 'createdAt'),
      })
      .execute(),
  );
}

export async function crossCertificatesOf(db: Db, caId: string): Promise<CrossCertificateRecord[]> {
  const rows = await guarded(`cross certificates of CA ${caId}`, () =>
    tables(db)
      .selectFrom('ca_cross_certificates')
      .select(['id', 'ca_id', 'signed_by', 'serial', 'der', 'not_before', 'not_after', 'created_at'])
      .where('ca_id', '=', caId)
      .orderBy('created_at')
      .orderBy('id')
      .execute(),
  );
  return rows.map((r) => ({
    id: r.id,
    caId: r.ca_id,
    signedBy: r.signed_by,
    serial: r.serial,
    der: Buffer.from(r.der),
    notBefore: fromIso(r.not_before),
    notAfter: fromIso(r.not_after),
    createdAt: fromIso(r.created_at),
  }));
}

/**
 * Pages issuer by issuer (the cursor names the issuer and the last id), so
 * each page is a range of the (issuer_id, status, id) index, never a sort.
 */
export async function listDependents(db: Db, issuerIds: readonly string[], page: PageRequest): Promise<Page<DependentCertificate>> {
  checkLimit(page.limit);
  const order = [...issuerIds].sort();
  let at = 0;
  let after = '';
  if (page.cursor !== undefined) {
    const [issuer, id] = decodeCursor('dependents', page.cursor, 2) as [string, string];
    at = order.indexOf(issuer);
    if (at < 0) throw new CertfleetError('bad-request', 'invalid page cursor');
    after = id;
  }
  const items: DependentCertificate[] = [];
  for (; at < order.length; at += 1, after = '') {
    const issuer = order[at]!;
    const need = page.limit - items.length;
    const rows = await guarded(`dependents of CA ${issuer}`, () =>
      db
        .selectFrom('certificates')
        .select(['id', 'serial', 'issuer_id', 'thing_name', 'subject', 'not_after'])
        .where('issuer_id', '=', issuer)
        .where('status', '=', 'active')
        .where('id', '>', after)
        .orderBy('id')
        .limit(need + 1)
        .execute(),
    );
    for (const r of rows.slice(0, need)) {
      items.push({ id: r.id, serial: r.serial, issuerId: r.issuer_id, thingName: r.thing_name, subject: r.subject, notAfter: fromIso(r.not_after) });
    }
    // More of this issuer than fit: resume after the last one given.
    if (rows.length > need) return { items, next: encodeCursor('dependents', [issuer, items[items.length - 1]!.id]) };
    // Exactly full at the end of this issuer: resume at the start of the next one.
    if (items.length === page.limit && at + 1 < order.length) return { items, next: encodeCursor('dependents', [order[at + 1]!, '']) };
  }
  return { items };
}

export async function countDependents(db: Db, issuerIds: readonly string[]): Promise<number> {
  if (issuerIds.length === 0) return 0;
  const row = await guarded('dependents count', () =>
    db
      .selectFrom('certificates')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('issuer_id', 'in', [...issuerIds])
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

function bundleRecord(r: { version: number | string; roots: string; created_at: string }): TrustBundleVersionRecord {
  return { version: Number(r.version), roots: JSON.parse(r.roots) as string[], createdAt: fromIso(r.created_at) };
}

export async function latestTrustBundle(db: Db): Promise<TrustBundleVersionRecord | undefined> {
  const row = await guarded('trust bundle', () =>
    tables(db).selectFrom('trust_bundle_versions').select(['version', 'roots', 'created_at']).orderBy('version', 'desc').limit(1).executeTakeFirst(),
  );
  return row && bundleRecord(row);
}

export async function trustBundleVersions(db: Db): Promise<TrustBundleVersionRecord[]> {
  const rows = await guarded('trust bundle versions', () =>
    tables(db).selectFrom('trust_bundle_versions').select(['version', 'roots', 'created_at']).orderBy('version').execute(),
  );
  return rows.map(bundleRecord);
}

export async function appendTrustBundleVersion(
  ctx: StoreContext,
  previous: number,
  roots: readonly string[],
  audit?: AuditInput,
): Promise<TrustBundleVersionRecord> {
  const version = previous + 1;
  const createdAt = ctx.now();
  // The primary key makes two concurrent changes from the same version collide: one wins, the other is 'conflict'.
  await write(ctx, `trust bundle version ${version}`, audit, (trx) =>
    tables(trx)
      .insertInto('trust_bundle_versions')
      .values({ version, roots: JSON.stringify(roots), created_at: toIso(createdAt, 'createdAt') })
      .execute(),
  );
  return { version, roots: [...roots], createdAt };
}

export async function acknowledgeTrustBundle(db: Db, thing: string, version: number, at: Date): Promise<number> {
  const when = toIso(at, 'acknowledgedAt');
  return guarded(`trust bundle acknowledgement of ${thing}`, async () => {
    const t = tables(db);
    // A late acknowledgement of an older version never lowers what the thing already confirmed.
    await t
      .insertInto('trust_bundle_acks')
      .values({ thing_name: thing, version, acknowledged_at: when })
      .onConflict((oc) =>
        oc.column('thing_name').doUpdateSet({ version, acknowledged_at: when }).where('trust_bundle_acks.version', '<', version),
      )
      .execute();
    const row = await t.selectFrom('trust_bundle_acks').select('version').where('thing_name', '=', thing).executeTakeFirstOrThrow();
    return Number(row.version);
  });
}

/** Distinct things holding an active certificate and no acknowledgement of any of `versions`. */
function notAcknowledging(db: Db, versions: readonly number[]) {
  const t = tables(db);
  return t
    .selectFrom('certificates as c')
    .where('c.status', '=', 'active')
    .where('c.thing_name', 'is not', null)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('trust_bundle_acks as a')
            .select('a.thing_name')
            .whereRef('a.thing_name', '=', 'c.thing_name')
            .where('a.version', 'in', versions.length > 0 ? [...versions] : [-1]),
        ),
      ),
    );
}

export async function countThingsNotAcknowledging(db: Db, versions: readonly number[]): Promise<number> {
  const row = await guarded('trust bundle pending count', () =>
    notAcknowledging(db, versions)
      .select((eb) => eb.fn.count<number | string>('c.thing_name').distinct().as('n'))
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

export async function listThingsNotAcknowledging(db: Db, versions: readonly number[], page: PageRequest): Promise<Page<string>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? '' : decodeCursor('pending-things', page.cursor, 1)[0]!;
  const rows = await guarded('trust bundle pending things', () =>
    notAcknowledging(db, versions)
      .select('c.thing_name')
      .distinct()
      .where('c.thing_name', '>', after)
      .orderBy('c.thing_name')
      .limit(page.limit + 1)
      .execute(),
  );
  return namePage(rows.map((r) => r.thing_name!), page.limit, 'pending-things');
}

export async function thingsWithActiveCertificates(db: Db, page: PageRequest): Promise<Page<string>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? '' : decodeCursor('active-things', page.cursor, 1)[0]!;
  const rows = await guarded('things with active certificates', () =>
    db
      .selectFrom('certificates')
      .select('thing_name')
      .distinct()
      .where('status', '=', 'active')
      .where('thing_name', '>', after)
      .orderBy('thing_name')
      .limit(page.limit + 1)
      .execute(),
  );
  return namePage(rows.map((r) => r.thing_name!), page.limit, 'active-things');
}

export async function countThingsWithActiveCertificates(db: Db): Promise<number> {
  const row = await guarded('things with active certificates', () =>
    db
      .selectFrom('certificates')
      .select((eb) => eb.fn.count<number | string>('thing_name').distinct().as('n'))
      .where('status', '=', 'active')
      .where('thing_name', 'is not', null)
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

function namePage(names: string[], limit: number, kind: string): Page<string> {
  if (names.length <= limit) return { items: names };
  const items = names.slice(0, limit);
  return { items, next: encodeCursor(kind, [items[items.length - 1]!]) };
}

export async function trustBundleAckOf(db: Db, thing: string): Promise<number | undefined> {
  const row = await guarded(`trust bundle acknowledgement of ${thing}`, () =>
    tables(db).selectFrom('trust_bundle_acks').select('version').where('thing_name', '=', thing).executeTakeFirst(),
  );
  return row === undefined ? undefined : Number(row.version);
}
