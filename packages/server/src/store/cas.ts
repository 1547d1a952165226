import { CertfleetError } from '../errors.js';
import { fromBlob, fromIso, toBlob, toIso } from './columns.js';
import type { AuditInput } from './audit-records.js';
import { guarded } from './driver-errors.js';
import type {
  CaKeyRecord,
  CaProvisioning,
  CaProvisioningUpdate,
  CaRecord,
  CaStatus,
  NewCa,
  NewCaKey,
} from './records.js';
import type { CasTable, Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/* SQL for the `cas` and `ca_keys` tables. */

/** The v1 columns, which CaRecord holds; v2's provisioning columns are read apart (CaProvisioning). */
type CaRow = Omit<CasTable, 'auto_registration' | 'provisioning_template'>;

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

export async function insertCa(ctx: StoreContext, ca: NewCa, audit?: AuditInput): Promise<void> {
  const row = caRow(ca);
  await write(ctx, `CA ${ca.name}`, audit, (trx) => trx.insertInto('cas').values(row).execute());
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

export async function setCaStatus(ctx: StoreContext, id: string, status: CaStatus, audit?: AuditInput): Promise<void> {
  await write(ctx, `CA ${id}`, audit, async (trx) => {
    const result = await trx.updateTable('cas').set({ status }).where('id', '=', id).executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw new CertfleetError('not-found', `CA ${id} not found`);
  });
}

export async function getCaProvisioning(db: Db, id: string): Promise<CaProvisioning | undefined> {
  const row = await guarded(`CA ${id}`, () =>
    db
      .selectFrom('cas')
      .select(['id', 'auto_registration', 'provisioning_template'])
      .where('id', '=', id)
      .executeTakeFirst(),
  );
  return row && caProvisioning(row);
}

export async function updateCa(
  ctx: StoreContext,
  id: string,
  update: CaProvisioningUpdate,
  audit?: AuditInput,
): Promise<CaProvisioning> {
  const set: { auto_registration?: number; provisioning_template?: string | null } = {};
  if (update.autoRegistration !== undefined) {
    if (typeof update.autoRegistration !== 'boolean') throw new CertfleetError('bad-request', 'autoRegistration must be a boolean');
    // 0/1: better-sqlite3 cannot bind booleans, and PostgreSQL reads '1'/'0' as boolean input.
    set.auto_registration = update.autoRegistration ? 1 : 0;
  }
  if (update.provisioningTemplate !== undefined) set.provisioning_template = update.provisioningTemplate;
  return write(ctx, `CA ${id}`, audit, async (trx) => {
    const columns = ['id', 'auto_registration', 'provisioning_template'] as const;
    // An empty update still reports a missing CA and returns the current values.
    const row =
      Object.keys(set).length === 0
        ? await trx.selectFrom('cas').select(columns).where('id', '=', id).executeTakeFirst()
        : await trx.updateTable('cas').set(set).where('id', '=', id).returning(columns).executeTakeFirst();
    if (row === undefined) throw new CertfleetError('not-found', `CA ${id} not found`);
    return caProvisioning(row);
  });
}

/** Insert-only: a second key for the same CA is a 'conflict', an unknown CA 'not-found'. */
export async function putCaKey(ctx: StoreContext, caId: string, key: NewCaKey, audit?: AuditInput): Promise<void> {
  const createdAt = toIso(ctx.now(), 'createdAt');
  await write(ctx, `key of CA ${caId}`, audit, (trx) =>
    trx
      .insertInto('ca_keys')
      .values({ ca_id: caId, key_store: key.keyStore, sealed: toBlob(key.sealed), created_at: createdAt })
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
export async function createCaWithKey(ctx: StoreContext, ca: NewCa, key: NewCaKey, audit?: AuditInput): Promise<void> {
  const row = caRow(ca);
  await write(ctx, `CA ${ca.name}`, audit, async (trx) => {
    await trx.insertInto('cas').values(row).execute();
    await trx
      .insertInto('ca_keys')
      .values({ ca_id: ca.id, key_store: key.keyStore, sealed: toBlob(key.sealed), created_at: row.created_at })
      .execute();
  });
}

// The provisioning columns keep their defaults (off, no template): updateCa sets them.
export function caRow(ca: NewCa): CaRow {
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

function caRecord(row: CaRow): CaRecord {
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

function caProvisioning(row: {
  id: string;
  auto_registration: boolean | number;
  provisioning_template: string | null;
}): CaProvisioning {
  return {
    caId: row.id,
    autoRegistration: row.auto_registration === true || row.auto_registration === 1,
    provisioningTemplate: row.provisioning_template,
  };
}
