import { CertfleetError } from '../errors.js';
import { fromIso, fromIsoOrNull, isIsoUtc, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import type { ConnectionQuery, ConnectionRecord, NewConnection, Page } from './records.js';
import type { ConnectionsTable, Db } from './schema.js';
import { unsyncedTransaction } from './sqlite.js';

/* SQL for `connections` (schema v3). Single statements: no transaction needed. */

export const CONNECTION_COLUMNS = [
  'id',
  'certificate_id',
  'client_id',
  'remote_address',
  'connected_at',
  'disconnected_at',
  'disconnect_reason',
  'node_id',
] as const;
const CURSOR_KIND = 'connections';
/** MQTT 3.1.1 lets a client id be 65535 bytes [MQTT-1.5.3]; records keep a bounded prefix. */
const MAX_CLIENT_ID = 256;
const MAX_TEXT = 256;

export async function recordConnect(db: Db, c: NewConnection): Promise<void> {
  const row = connectRow(c);
  await guarded(`connection ${c.id}`, () => db.insertInto('connections').values(row).execute());
}

function connectRow(c: NewConnection): ConnectionsTable {
  return {
    id: required(c.id, 'id'),
    certificate_id: required(c.certificateId, 'certificateId'),
    client_id: bounded(c.clientId, MAX_CLIENT_ID),
    remote_address: bounded(c.remoteAddress, MAX_TEXT),
    connected_at: toIso(c.connectedAt, 'connectedAt'),
    disconnected_at: null,
    disconnect_reason: null,
    node_id: required(c.nodeId, 'nodeId'),
  };
}

/** One connection-record write of a batch (ConnectionStore.recordConnectionWrites). */
export type ConnectionWrite =
  | { readonly kind: 'connect'; readonly connection: NewConnection }
  | { readonly kind: 'disconnect'; readonly id: string; readonly at: Date; readonly reason: string };

/** A write of a batch that was not applied, by its index in the batch; the others were. */
export interface ConnectionWriteFailure {
  readonly index: number;
  readonly error: CertfleetError;
}

/**
 * Applies the writes in order in one transaction: one commit for the batch
 * instead of one per write (the broker groups its records so;
 * broker/connection-log.ts), and on SQLite a commit that does not wait for
 * fsync (unsyncedTransaction: these records are acknowledged to no one). A write that cannot apply (bad fields, a
 * duplicate id, an unknown id) is reported and skipped without undoing the
 * others, with the same errors recordConnect and recordDisconnect give; only
 * a failure of the database itself rejects, and then nothing was written.
 */
export async function recordConnectionWrites(db: Db, writes: readonly ConnectionWrite[]): Promise<ConnectionWriteFailure[]> {
  const failures: ConnectionWriteFailure[] = [];
  const valid: Array<{ index: number; apply: (trx: Db) => Promise<CertfleetError | undefined> }> = [];
  writes.forEach((w, index) => {
    try {
      valid.push({ index, apply: w.kind === 'connect' ? insertOnce(connectRow(w.connection)) : closeOnce(w.id, toIso(w.at, 'disconnectedAt'), closeReason(w.reason)) });
    } catch (err) {
      failures.push({ index, error: err instanceof CertfleetError ? err : new CertfleetError('bad-request', String(err)) });
    }
  });
  if (valid.length === 0) return failures;
  await guarded(`${valid.length} connection records`, () =>
    unsyncedTransaction(db, async (trx) => {
      for (const v of valid) {
        const error = await v.apply(trx);
        if (error) failures.push({ index: v.index, error });
      }
    }),
  );
  return failures.sort((a, b) => a.index - b.index);
}

/** An insert that reports a duplicate id instead of failing, which would abort the whole transaction on PostgreSQL. */
function insertOnce(row: ConnectionsTable): (trx: Db) => Promise<CertfleetError | undefined> {
  return async (trx) => {
    const result = await trx.insertInto('connections').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    return (result.numInsertedOrUpdatedRows ?? 1n) > 0n ? undefined : new CertfleetError('conflict', `connection ${row.id} already exists`);
  };
}

function closeOnce(id: string, disconnectedAt: string, reason: string): (trx: Db) => Promise<CertfleetError | undefined> {
  return async (trx) => {
    const result = await trx
      .updateTable('connections')
      .set({ disconnected_at: disconnectedAt, disconnect_reason: reason })
      .where('id', '=', id)
      .where('disconnected_at', 'is', null)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) return undefined;
    const exists = await trx.selectFrom('connections').select('id').where('id', '=', id).executeTakeFirst();
    return exists === undefined ? new CertfleetError('not-found', `connection ${id} not found`) : undefined;
  };
}

function closeReason(reason: string): string {
  return bounded(required(reason, 'reason'), MAX_TEXT);
}

/** First close wins: a row already closed is left as it is. */
export async function recordDisconnect(db: Db, id: string, at: Date, reason: string): Promise<void> {
  const disconnectedAt = toIso(at, 'disconnectedAt');
  const subject = `connection ${id}`;
  await guarded(subject, async () => {
    const result = await db
      .updateTable('connections')
      .set({ disconnected_at: disconnectedAt, disconnect_reason: bounded(required(reason, 'reason'), MAX_TEXT) })
      .where('id', '=', id)
      .where('disconnected_at', 'is', null)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) return;
    const exists = await db.selectFrom('connections').select('id').where('id', '=', id).executeTakeFirst();
    if (exists === undefined) throw new CertfleetError('not-found', `${subject} not found`);
  });
}

export async function closeOpenConnections(db: Db, nodeId: string, at: Date, reason: string): Promise<number> {
  const disconnectedAt = toIso(at, 'disconnectedAt');
  const result = await guarded(`connections of node ${nodeId}`, () =>
    db
      .updateTable('connections')
      .set({ disconnected_at: disconnectedAt, disconnect_reason: bounded(required(reason, 'reason'), MAX_TEXT) })
      .where('disconnected_at', 'is', null)
      .where('node_id', '=', nodeId)
      .executeTakeFirst(),
  );
  return Number(result.numUpdatedRows);
}

export async function openConnectionsByCertificate(db: Db, certificateId: string): Promise<ConnectionRecord[]> {
  const rows = await guarded(`connections of certificate ${certificateId}`, () =>
    db
      .selectFrom('connections')
      .select(CONNECTION_COLUMNS)
      .where('certificate_id', '=', certificateId)
      .where('disconnected_at', 'is', null)
      .orderBy('connected_at', 'desc')
      .orderBy('id', 'desc')
      .execute(),
  );
  return rows.map(connectionRecord);
}

/** Keyset pagination on (connected_at, id), newest first. */
export async function listConnections(db: Db, query: ConnectionQuery): Promise<Page<ConnectionRecord>> {
  checkLimit(query.limit);
  const after = query.cursor === undefined ? undefined : decodeConnectionCursor(query.cursor);
  const rows = await guarded('connection list', () => {
    let select = db.selectFrom('connections').select(CONNECTION_COLUMNS);
    if (query.certificateId !== undefined) select = select.where('certificate_id', '=', query.certificateId);
    if (query.open === true) select = select.where('disconnected_at', 'is', null);
    if (query.open === false) select = select.where('disconnected_at', 'is not', null);
    if (after !== undefined) {
      select = select.where(({ eb, refTuple, tuple }) => eb(refTuple('connected_at', 'id'), '<', tuple(after.time, after.id)));
    }
    return select.orderBy('connected_at', 'desc').orderBy('id', 'desc').limit(query.limit + 1).execute();
  });
  const items = rows.slice(0, query.limit).map(connectionRecord);
  const last = rows.length > query.limit ? rows[query.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(CURSOR_KIND, [last.connected_at, last.id]) };
}

function decodeConnectionCursor(cursor: string): { time: string; id: string } {
  const [time, id] = decodeCursor(CURSOR_KIND, cursor, 2) as [string, string];
  if (!isIsoUtc(time)) throw new CertfleetError('bad-request', 'invalid page cursor');
  return { time, id };
}

function required(value: string, field: string): string {
  if (typeof value !== 'string' || value === '') throw new CertfleetError('bad-request', `connection ${field} is required`);
  return value;
}

/**
 * The text comes from the wire (a client id): cut on a code point boundary
 * and with NUL replaced, which PostgreSQL text cannot hold (MQTT forbids it
 * too [MQTT-1.5.3-2], but a record must not fail because a client broke the rule).
 */
function bounded(value: string, max: number): string {
  if (typeof value !== 'string') throw new CertfleetError('bad-request', 'connection text fields must be strings');
  const cut = value.length <= max ? value : Array.from(value).slice(0, max).join('');
  return cut.replaceAll('\u0000', '\ufffd');
}

export function connectionRecord(row: ConnectionsTable): ConnectionRecord {
  return {
    id: row.id,
    certificateId: row.certificate_id,
    clientId: row.client_id,
    remoteAddress: row.remote_address,
    connectedAt: fromIso(row.connected_at),
    disconnectedAt: fromIsoOrNull(row.disconnected_at),
    disconnectReason: row.disconnect_reason,
    nodeId: row.node_id,
  };
}
