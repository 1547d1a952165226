import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { CERTIFICATE_COLUMNS, certificateRecord } from './certificates.js';
import { fromIso, toIso } from './columns.js';
import { classifyDriverError, guarded } from './driver-errors.js';
import type { CertificateRecord, CertificateStatus, CertificateStatusChange, CertificateStatusEntry } from './records.js';
import type { CertificatesTable, Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * Certificate lifecycle writes: status changes with their history, and the
 * certificate-to-thing link. Which transitions are allowed is the registry's
 * decision; the store only makes each change atomic and conditional
 * (compare-and-set), so two deciders racing on one certificate cannot both win.
 */

/**
 * Moves the certificate from `from` to `to` only if its status is still
 * `from` ('invalid-state' otherwise, naming the current status), and records
 * the change in certificate_status_history. Entering 'revoked' sets revokedAt
 * (= change.at) and revocationReason; leaving it (e.g. the end of a
 * certificateHold, RFC 5280 5.3.1) clears both.
 */
export async function setCertificateStatus(
  ctx: StoreContext,
  id: string,
  from: CertificateStatus,
  to: CertificateStatus,
  change: CertificateStatusChange,
  audit?: AuditInput,
): Promise<CertificateRecord> {
  if (from === to) throw new CertfleetError('bad-request', `status change from ${from} to itself`);
  if (typeof change.actor !== 'string' || change.actor === '') {
    throw new CertfleetError('bad-request', 'status change actor must be a non-empty string');
  }
  const at = toIso(change.at, 'at');
  const set: Partial<CertificatesTable> = { status: to };
  if (to === 'revoked') {
    set.revoked_at = at;
    set.revocation_reason = change.revocationReason ?? null;
  } else if (from === 'revoked') {
    set.revoked_at = null;
    set.revocation_reason = null;
  }
  return write(ctx, `certificate ${id}`, audit, async (trx) => {
    const row = await trx
      .updateTable('certificates')
      .set(set)
      .where('id', '=', id)
      .where('status', '=', from)
      .returning(CERTIFICATE_COLUMNS)
      .executeTakeFirst();
    if (row === undefined) {
      const current = await trx.selectFrom('certificates').select('status').where('id', '=', id).executeTakeFirst();
      if (current === undefined) throw new CertfleetError('not-found', `certificate ${id} not found`);
      throw new CertfleetError('invalid-state', `certificate ${id} is ${current.status}, not ${from}`);
    }
    await trx
      .insertInto('certificate_status_history')
      .values({ certificate_id: id, status: to, reason: change.reason ?? null, actor: change.actor, at })
      .execute();
    return certificateRecord(row);
  });
}

/**
 * A certificate belongs to at most one thing (a thing may hold several).
 * Attaching to the thing it already has is a no-op; to another thing is
 * 'invalid-state' (detach first, so a move is always two visible steps).
 */
export async function attachCertificateToThing(
  ctx: StoreContext,
  id: string,
  thing: string,
  audit?: AuditInput,
): Promise<void> {
  await write(ctx, `certificate ${id}`, audit, async (trx) => {
    let updated: bigint;
    try {
      const result = await trx
        .updateTable('certificates')
        .set({ thing_name: thing })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('thing_name', 'is', null), eb('thing_name', '=', thing)]))
        .executeTakeFirst();
      updated = result.numUpdatedRows;
    } catch (err) {
      if (classifyDriverError(err) === 'foreign-key') throw new CertfleetError('not-found', `thing ${thing} not found`);
      throw err;
    }
    if (updated > 0n) return;
    const current = await trx.selectFrom('certificates').select('thing_name').where('id', '=', id).executeTakeFirst();
    if (current === undefined) throw new CertfleetError('not-found', `certificate ${id} not found`);
    throw new CertfleetError('invalid-state', `certificate ${id} is attached to thing ${current.thing_name ?? ''}`);
  });
}

/** Idempotent for a certificate already detached; 'not-found' for an unknown one. */
export async function detachCertificate(ctx: StoreContext, id: string, audit?: AuditInput): Promise<void> {
  await write(ctx, `certificate ${id}`, audit, async (trx) => {
    const result = await trx.updateTable('certificates').set({ thing_name: null }).where('id', '=', id).executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw new CertfleetError('not-found', `certificate ${id} not found`);
  });
}

/** Oldest first; empty for an unknown certificate. */
export async function certificateHistory(db: Db, id: string): Promise<CertificateStatusEntry[]> {
  const rows = await guarded(`certificate ${id}`, () =>
    db
      .selectFrom('certificate_status_history')
      .select(['certificate_id', 'status', 'reason', 'actor', 'at'])
      .where('certificate_id', '=', id)
      .orderBy('id')
      .execute(),
  );
  return rows.map((row) => ({
    certificateId: row.certificate_id,
    status: row.status,
    reason: row.reason,
    actor: row.actor,
    at: fromIso(row.at),
  }));
}
