import { CertfleetError } from '../errors.js';
import { fromBlob, fromIso, toBlob, toIso } from './columns.js';
import { guarded } from './driver-errors.js';
import type { CaKeyRecord, CaRecord, CaStatus, NewCa, NewCaKey } from './records.js';
import type { CasTable, Db } from './schema.js';

/* SQL for the `cas` and `ca_keys` tables. */

const CA_COLUMNS = [
  'id',
  'name',
  'parent_id',
  'kind',
  'status',
  'key_algorithm',
  'subject',
  'serial',
  'certificate_der',
  'not_before',
  'not_after',
  'path_len',
  'created_at',
] as const;

export async function insertCa(db: Db, ca: NewCa): Promise<void> {
  await guarded(`CA ${ca.name}`, () => db.insertInto('cas').values(caRow(ca)).execute());
}

export async function getCa(db: Db, id: string): Promise<CaRecord | undefined> {
  const row = await guarded(`CA ${id}`, () =>
    db.selectFrom('cas').select(CA_COLUMNS).where('id', '=', id).executeTakeFirst(),
  );
  return row && caRecord(row);
}

export async function getCaByName(db: Db, name: string): Promise<CaRecord | undefined> {
  const row = await guarded(`CA ${name}`, () =>
    db.selectFrom('cas').select(CA_COLUMNS).where('name', '=', name).executeTakeFirst(),
  );
  return row && caRecord(row);
}

export async function listCas(db: Db): Promise<CaRecord[]> {
  const rows = await guarded('CA list', () =>
    db.selectFrom('cas').select(CA_COLUMNS).orderBy('created_at').orderBy('id').execute(),
  );
  return rows.map(caRecord);
}

export async function setCaStatus(db: Db, id: string, status: CaStatus): Promise<void> {
  const result = await guarded(`CA ${id}`, () =>
    db.updateTable('cas').set({ status }).where('id', '=', id).executeTakeFirst(),
  );
  if (result.numUpdatedRows === 0n) throw new CertfleetError('not-found', `CA ${id} not found`);
}

/** Insert-only: a second key for the same CA is a 'conflict', an unknown CA 'not-found'. */
export async function putCaKey(db: Db, caId: string, key: NewCaKey, createdAt: Date): Promise<void> {
  await guarded(`key of CA ${caId}`, () =>
    db
      .insertInto('ca_keys')
      .values({
        ca_id: caId,
        key_store: key.keyStore,
        sealed: toBlob(key.sealed),
        created_at: toIso(createdAt, 'createdAt'),
      })
      .execute(),
  );
}

export async function getCaKey(db: Db, caId: string): Promise<CaKeyRecord | undefined> {
  const row = await guarded(`key of CA ${caId}`, () =>
    db
      .selectFrom('ca_keys')
      .select(['ca_id', 'key_store', 'sealed', 'created_at'])
      .where('ca_id', '=', caId)
      .executeTakeFirst(),
  );
  return (
    row && {
      caId: row.ca_id,
      keyStore: row.key_store,
      sealed: fromBlob(row.sealed),
      createdAt: fromIso(row.created_at),
    }
  );
}

/** Both rows or neither: a CA without its key could never sign, a key without its CA is an orphan. */
export async function createCaWithKey(db: Db, ca: NewCa, key: NewCaKey): Promise<void> {
  const row = caRow(ca);
  await guarded(`CA ${ca.name}`, () =>
    db.transaction().execute(async (trx) => {
      await trx.insertInto('cas').values(row).execute();
      await trx
        .insertInto('ca_keys')
        .values({ ca_id: ca.id, key_store: key.keyStore, sealed: toBlob(key.sealed), created_at: row.created_at })
        .execute();
    }),
  );
}

function caRow(ca: NewCa): CasTable {
  return {
    id: ca.id,
    name: ca.name,
    parent_id: ca.parentId,
    kind: ca.kind,
    status: ca.status,
    key_algorithm: ca.keyAlgorithm,
    subject: ca.subject,
    serial: ca.serial,
    certificate_der: toBlob(ca.certificateDer),
    not_before: toIso(ca.notBefore, 'notBefore'),
    not_after: toIso(ca.notAfter, 'notAfter'),
    path_len: ca.pathLen,
    created_at: toIso(ca.createdAt, 'createdAt'),
  };
}

function caRecord(row: CasTable): CaRecord {
  return {
    id: row.id,
    name: row.name,
    parentId: row.parent_id,
    kind: row.kind,
    status: row.status,
    keyAlgorithm: row.key_algorithm,
    subject: row.subject,
    serial: row.serial,
    certificateDer: fromBlob(row.certificate_der),
    notBefore: fromIso(row.not_before),
    notAfter: fromIso(row.not_after),
    pathLen: row.path_len,
    createdAt: fromIso(row.created_at),
  };
}
