import { CertfleetError } from '../errors.js';
import { fromBlob, fromIso, fromIsoOrNull, isIsoUtc, toBlob, toIso, toIsoOrNull } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { classifyDriverError, guarded, storeError } from './driver-errors.js';
import type {
  CertificateFilter,
  CertificateQuery,
  CertificateRecord,
  NewCertificate,
  Page,
} from './records.js';
import type { CertificatesTable, Db } from './schema.js';

/* SQL for `certificates`. */

const CERTIFICATE_COLUMNS = [
  'id',
  'serial',
  'issuer_id',
  'thing_name',
  'status',
  'profile',
  'subject',
  'not_before',
  'not_after',
  'key_algorithm',
  'der',
  'created_at',
  'revoked_at',
  'revocation_reason',
] as const;

const CURSOR_KIND = 'certificates';

/**
 * On the issuance path: a single INSERT, whose foreign keys check the issuer
 * and the thing in the same statement. Only when that fails do we look up
 * which one is missing, to say so.
 */
export async function insertCertificate(db: Db, certificate: NewCertificate): Promise<void> {
  const row = certificateRow(certificate);
  try {
    await db.insertInto('certificates').values(row).execute();
  } catch (err) {
    if (classifyDriverError(err) === 'foreign-key') throw await missingReference(db, certificate, err);
    throw storeError(err, `certificate ${certificate.id} or serial ${certificate.serial}`);
  }
}

export async function getCertificate(db: Db, id: string): Promise<CertificateRecord | undefined> {
  const row = await guarded(`certificate ${id}`, () =>
    db.selectFrom('certificates').select(CERTIFICATE_COLUMNS).where('id', '=', id).executeTakeFirst(),
  );
  return row && certificateRecord(row);
}

export async function getCertificateBySerial(db: Db, serial: string): Promise<CertificateRecord | undefined> {
  const row = await guarded(`certificate serial ${serial}`, () =>
    db.selectFrom('certificates').select(CERTIFICATE_COLUMNS).where('serial', '=', serial).executeTakeFirst(),
  );
  return row && certificateRecord(row);
}

/**
 * Keyset pagination on (created_at, id), served by the index of the same
 * name: each page costs the same however deep it is, and rows inserted while
 * a client pages never make an existing item appear twice or be skipped
 * (as OFFSET would).
 */
export async function listCertificates(db: Db, query: CertificateQuery): Promise<Page<CertificateRecord>> {
  checkLimit(query.limit);
  const after = query.cursor === undefined ? undefined : decodeCertificateCursor(query.cursor);
  const rows = await guarded('certificate list', () => {
    let select = filtered(db, query).select(CERTIFICATE_COLUMNS);
    if (after !== undefined) {
      select = select.where(({ eb, refTuple, tuple }) =>
        eb(refTuple('created_at', 'id'), '>', tuple(after.createdAt, after.id)),
      );
    }
    // One row more than asked tells whether a next page exists.
    return select.orderBy('created_at').orderBy('id').limit(query.limit + 1).execute();
  });
  const items = rows.slice(0, query.limit).map(certificateRecord);
  const last = rows.length > query.limit ? rows[query.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(CURSOR_KIND, [last.created_at, last.id]) };
}

export async function countCertificates(db: Db, filter: CertificateFilter = {}): Promise<number> {
  const row = await guarded('certificate count', () =>
    filtered(db, filter)
      .select((eb) => eb.fn.countAll().as('count'))
      .executeTakeFirstOrThrow(),
  );
  // PostgreSQL returns count(*) as a bigint string, SQLite as a number.
  return Number(row.count);
}

function filtered(db: Db, filter: CertificateFilter) {
  let query = db.selectFrom('certificates');
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.thing !== undefined) query = query.where('thing_name', '=', filter.thing);
  if (filter.issuerId !== undefined) query = query.where('issuer_id', '=', filter.issuerId);
  if (filter.expiringBefore !== undefined) {
    query = query.where('not_after', '<', toIso(filter.expiringBefore, 'expiringBefore'));
  }
  return query;
}

function decodeCertificateCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id] = decodeCursor(CURSOR_KIND, cursor, 2) as [string, string];
  if (!isIsoUtc(createdAt)) throw new CertfleetError('bad-request', 'invalid page cursor');
  return { createdAt, id };
}

async function missingReference(db: Db, certificate: NewCertificate, cause: unknown): Promise<CertfleetError> {
  const subject = `certificate ${certificate.id}`;
  return guarded(subject, async () => {
    if (certificate.thingName !== null) {
      const thing = await db
        .selectFrom('things')
        .select('name')
        .where('name', '=', certificate.thingName)
        .executeTakeFirst();
      if (thing === undefined) {
        return new CertfleetError('not-found', `thing ${certificate.thingName} not found`, { cause });
      }
    }
    return new CertfleetError('not-found', `issuer CA ${certificate.issuerId} not found`, { cause });
  });
}

function certificateRow(c: NewCertificate): CertificatesTable {
  return {
    id: c.id,
    serial: c.serial,
    issuer_id: c.issuerId,
    thing_name: c.thingName,
    status: c.status,
    profile: c.profile,
    subject: c.subject,
    not_before: toIso(c.notBefore, 'notBefore'),
    not_after: toIso(c.notAfter, 'notAfter'),
    key_algorithm: c.keyAlgorithm,
    der: toBlob(c.der),
    created_at: toIso(c.createdAt, 'createdAt'),
    revoked_at: toIsoOrNull(c.revokedAt, 'revokedAt'),
    revocation_reason: c.revocationReason ?? null,
  };
}

function certificateRecord(row: CertificatesTable): CertificateRecord {
  return {
    id: row.id,
    serial: row.serial,
    issuerId: row.issuer_id,
    thingName: row.thing_name,
    status: row.status,
    profile: row.profile,
    subject: row.subject,
    notBefore: fromIso(row.not_before),
    notAfter: fromIso(row.not_after),
    keyAlgorithm: row.key_algorithm,
    der: fromBlob(row.der),
    createdAt: fromIso(row.created_at),
    revokedAt: fromIsoOrNull(row.revoked_at),
    revocationReason: row.revocation_reason,
  };
}
