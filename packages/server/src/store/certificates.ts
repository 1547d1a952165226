import { CertfleetError } from '../errors.js';
import { fromBlob, fromIso, fromIsoOrNull, isIsoUtc, toBlob, toIso, toIsoOrNull } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import type { AuditInput } from './audit-records.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import type {
  CertificateFilter,
  CertificateOrder,
  CertificateQuery,
  CertificateRecord,
  NewCertificate,
  Page,
} from './records.js';
import type { CertificatesTable, Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/* SQL for `certificates`. */

export const CERTIFICATE_COLUMNS = [
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

// The cursor kind names the order, so a cursor from one order is refused by the other.
const CURSOR_KIND: Record<CertificateOrder, string> = { created: 'certificates', expiry: 'certificates-by-expiry' };

/**
 * On the issuance path: the certificate and the first entry of its status
 * history in one transaction (and the audit entry, if given), whose foreign
 * keys check the issuer and the thing. Only when that fails do we look up
 * which one is missing, to say so. The history's actor is the audit actor,
 * else "system".
 */
export async function insertCertificate(
  ctx: StoreContext,
  certificate: NewCertificate,
  audit?: AuditInput,
): Promise<void> {
  const row = certificateRow(certificate);
  const actor = typeof audit?.actor === 'string' ? audit.actor : 'system';
  try {
    await write(ctx, `certificate ${certificate.id} or serial ${certificate.serial}`, audit, async (trx) => {
      await trx.insertInto('certificates').values(row).execute();
      await trx
        .insertInto('certificate_status_history')
        .values({ certificate_id: row.id, status: row.status, reason: null, actor, at: row.created_at })
        .execute();
    });
  } catch (err) {
    // After the rollback: the lookups run outside the failed transaction.
    if (err instanceof CertfleetError && classifyDriverError(err.cause) === 'foreign-key') {
      throw await missingReference(ctx.db, certificate, err.cause);
    }
    throw err;
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
 * Keyset pagination on (created_at, id) or (not_after, id), each served by an
 * index in that order (with status first for the expiry order): each page
 * costs the same however deep it is, and rows inserted while a client pages
 * never make an existing item appear twice or be skipped (as OFFSET would).
 */
export async function listCertificates(db: Db, query: CertificateQuery): Promise<Page<CertificateRecord>> {
  const { select, order, column } = pageQuery(db, query);
  const rows = await guarded('certificate list', () => select.execute());
  const items = rows.slice(0, query.limit).map(certificateRecord);
  const last = rows.length > query.limit ? rows[query.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(CURSOR_KIND[order], [last[column], last.id]) };
}

export async function countCertificates(db: Db, filter: CertificateFilter = {}): Promise<number> {
  const row = await guarded('certificate count', () => countQuery(db, filter).executeTakeFirstOrThrow());
  // PostgreSQL returns count(*) as a bigint string, SQLite as a number.
  return Number(row.count);
}

/** The statements behind listCertificates and countCertificates, also compiled by the bench to show their plans. */
export function pageQuery(db: Db, query: CertificateQuery) {
  checkLimit(query.limit);
  const order = query.order ?? (query.expiringBefore === undefined ? 'created' : 'expiry');
  if (order !== 'created' && order !== 'expiry') throw new CertfleetError('bad-request', 'order must be created or expiry');
  const column = order === 'created' ? 'created_at' : 'not_after';
  const after = query.cursor === undefined ? undefined : decodeCertificateCursor(order, query.cursor);
  let select = filtered(db, query).select(CERTIFICATE_COLUMNS);
  if (after !== undefined) {
    select = select.where(({ eb, refTuple, tuple }) => eb(refTuple(column, 'id'), '>', tuple(after.time, after.id)));
  }
  // One row more than asked tells whether a next page exists.
  return { select: select.orderBy(column).orderBy('id').limit(query.limit + 1), order, column } as const;
}

export function countQuery(db: Db, filter: CertificateFilter) {
  return filtered(db, filter).select((eb) => eb.fn.countAll().as('count'));
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

function decodeCertificateCursor(order: CertificateOrder, cursor: string): { time: string; id: string } {
  const [time, id] = decodeCursor(CURSOR_KIND[order], cursor, 2) as [string, string];
  if (!isIsoUtc(time)) throw new CertfleetError('bad-request', 'invalid page cursor');
  return { time, id };
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

export function certificateRow(c: NewCertificate): CertificatesTable {
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

export function certificateRecord(row: CertificatesTable): CertificateRecord {
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
