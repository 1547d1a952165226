import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { caRow } from './cas.js';
import { fromIso, toBlob, toIso } from './columns.js';
import { guarded } from './driver-errors.js';
import type { NewCa } from './records.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for CAs registered from outside (`external_cas`) and the registration
 * codes that prove possession of their key (`ca_registration_codes`), schema
 * v7 (migrations/006_external_cas.ts).
 */

/** 'default': registered with proof of possession; 'sni-only': without (a tenant selects it by TLS SNI). */
export type ExternalCaMode = 'default' | 'sni-only';

export interface NewRegistrationCode {
  /** SHA-256 of the code, lowercase hex. */
  codeHash: string;
  /** The API token that asked for it: only that token may spend it. */
  tokenId: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface ExternalCaRecord {
  caId: string;
  mode: ExternalCaMode;
  /** SHA-256 of the CA certificate's DER, lowercase hex. */
  certificateSha256: string;
  /** The audit actor that registered it. */
  registeredBy: string;
  createdAt: Date;
}

/** Everything one registration writes, in one transaction. */
export interface ExternalCaRegistration {
  /** kind 'external'; parentId when it chains to a registered CA. */
  ca: NewCa;
  mode: ExternalCaMode;
  certificateSha256: string;
  registeredBy: string;
  autoRegistration: boolean;
  provisioningTemplate: string | null;
  /** Default mode: the code the verification certificate carries, spent here. */
  code?: { codeHash: string; tokenId: string };
}

/** Registration codes and CAs registered from outside (registry/external-cas.ts). */
export interface ExternalCaStore {
  insertRegistrationCode(code: NewRegistrationCode): Promise<void>;
  /**
   * All or nothing, with `audit`: spends the code (it must belong to the
   * token, be unspent and unexpired at `ca.createdAt`, else 'forbidden'),
   * inserts the CA with its provisioning settings and its external_cas row.
   * 'conflict' if that certificate is already registered (from outside or
   * made by certfleet) or the name is taken; 'not-found' for a missing parent.
   */
  registerExternalCa(registration: ExternalCaRegistration, audit?: AuditInput): Promise<void>;
  getExternalCa(caId: string): Promise<ExternalCaRecord | undefined>;
  /** Deletes codes that expired before `before`, spent or not; returns how many. */
  purgeRegistrationCodes(before: Date): Promise<number>;
}

export async function insertRegistrationCode(ctx: StoreContext, code: NewRegistrationCode): Promise<void> {
  const row = {
    code_hash: code.codeHash,
    token_id: code.tokenId,
    created_at: toIso(code.createdAt, 'createdAt'),
    expires_at: toIso(code.expiresAt, 'expiresAt'),
    consumed_at: null,
    ca_id: null,
  };
  await guarded('registration code', () => ctx.db.insertInto('ca_registration_codes').values(row).execute());
}

export async function registerExternalCa(ctx: StoreContext, r: ExternalCaRegistration, audit?: AuditInput): Promise<void> {
  const ca = r.ca;
  const at = toIso(ca.createdAt, 'createdAt');
  const der = toBlob(ca.certificateDer);
  await write(ctx, `CA ${ca.name}`, audit, async (trx) => {
    if (r.code !== undefined) {
      // Compare-and-set: of two registrations racing on one code, one spends it.
      const spent = await trx
        .updateTable('ca_registration_codes')
        .set({ consumed_at: at, ca_id: ca.id })
        .where('code_hash', '=', r.code.codeHash)
        .where('token_id', '=', r.code.tokenId)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', at)
        .executeTakeFirst();
      if (spent.numUpdatedRows === 0n) {
        throw new CertfleetError('forbidden', 'the verification certificate does not carry a registration code this token asked for that is unspent and unexpired');
      }
    }
    // The same certificate made by certfleet (or registered before external_cas existed).
    const sameSerial = await trx.selectFrom('cas').select(['id', 'certificate_der']).where('serial', '=', ca.serial).execute();
    const twin = sameSerial.find((row) => Buffer.from(row.certificate_der).equals(der));
    if (twin) throw new CertfleetError('conflict', `this CA certificate is already registered as ${twin.id}`);
    await trx
      .insertInto('cas')
      .values({
        ...caRow(ca),
        // 0/1: better-sqlite3 cannot bind booleans; PostgreSQL reads them as boolean input (cas.ts).
        auto_registration: r.autoRegistration ? 1 : 0,
        provisioning_template: r.provisioningTemplate,
      })
      .execute();
    // Its unique certificate_sha256 settles a race between two registrations of one certificate.
    await trx
      .insertInto('external_cas')
      .values({ ca_id: ca.id, mode: r.mode, certificate_sha256: r.certificateSha256, registered_by: r.registeredBy, created_at: at })
      .execute();
  });
}

export async function getExternalCa(db: Db, caId: string): Promise<ExternalCaRecord | undefined> {
  const row = await guarded(`CA ${caId}`, () =>
    db
      .selectFrom('external_cas')
      .select(['ca_id', 'mode', 'certificate_sha256', 'registered_by', 'created_at'])
      .where('ca_id', '=', caId)
      .executeTakeFirst(),
  );
  return (
    row && {
      caId: row.ca_id,
      mode: row.mode,
      certificateSha256: row.certificate_sha256,
      registeredBy: row.registered_by,
      createdAt: fromIso(row.created_at),
    }
  );
}

export async function purgeRegistrationCodes(db: Db, before: Date): Promise<number> {
  const cutoff = toIso(before, 'before');
  const result = await guarded('registration codes', () =>
    db.deleteFrom('ca_registration_codes').where('expires_at', '<', cutoff).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}
