import { CertfleetError } from '../errors.js';
import type { AuditInput } from './audit-records.js';
import { CERTIFICATE_COLUMNS, certificateRecord, certificateRow } from './certificates.js';
import { toIso } from './columns.js';
import { classifyDriverError } from './driver-errors.js';
import type { CertificateRecord, CertificateReplacement, CertificateReplacementResult } from './records.js';
import type { Db } from './schema.js';
import { write, type StoreContext } from './transaction.js';

/*
 * Device replacement (DESIGN.md, Revocation: "device replacement moves the
 * thing, its policies and groups to the new certificate and revokes the old
 * one in one step"). One transaction holds every write, so a reader sees
 * either the old device's certificates in force or the new one with their
 * policies, never both or neither, and the audit log has one entry for it.
 *
 * Order inside the transaction: the old certificates are compare-and-set
 * first, in id order (their row locks are taken in the same order by every
 * replacement on PostgreSQL, so two of them cannot deadlock; the loser finds
 * the status changed and fails 'invalid-state'); then the new certificate is
 * inserted; then the policies are copied, read after the old rows are locked.
 * Groups need nothing: they belong to the thing, which the new certificate
 * joins. The old certificates stay on the thing, revoked, as its history.
 */

export async function replaceCertificates(
  ctx: StoreContext,
  replacement: CertificateReplacement,
  audit?: AuditInput,
): Promise<CertificateReplacementResult> {
  const { newCertificate, revoke, copyPolicies } = checkReplacement(replacement);
  const thing = newCertificate.thingName as string;
  const row = certificateRow(newCertificate);
  const at = toIso(replacement.at, 'at');
  const note = replacement.note ?? `replaced by ${newCertificate.id}`;
  const actor = replacement.actor;

  return write(ctx, `replacement of the certificates of thing ${thing}`, audit, async (trx) => {
    const revoked = new Map<string, CertificateRecord>();
    for (const old of [...revoke].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const updated = await trx
        .updateTable('certificates')
        .set({ status: 'revoked', revoked_at: at, revocation_reason: old.revocationReason })
        .where('id', '=', old.id)
        .where('status', '=', old.expectedStatus)
        .where('thing_name', '=', thing)
        .returning(CERTIFICATE_COLUMNS)
        .executeTakeFirst();
      if (updated === undefined) throw await refusal(trx, old.id, old.expectedStatus, thing);
      await trx
        .insertInto('certificate_status_history')
        .values({ certificate_id: old.id, status: 'revoked', reason: note, actor, at })
        .execute();
      revoked.set(old.id, certificateRecord(updated));
    }

    // Checked here rather than left to the foreign keys: on PostgreSQL a
    // failed statement aborts the transaction, so we could not ask which
    // reference was missing afterwards.
    const issuer = await trx.selectFrom('cas').select('id').where('id', '=', row.issuer_id).executeTakeFirst();
    if (issuer === undefined) throw new CertfleetError('not-found', `issuer CA ${row.issuer_id} not found`);
    try {
      await trx.insertInto('certificates').values(row).execute();
    } catch (err) {
      if (classifyDriverError(err) === 'unique') {
        throw new CertfleetError('conflict', `certificate ${row.id} or serial ${row.serial} already exists`, { cause: err });
      }
      throw err;
    }
    await trx
      .insertInto('certificate_status_history')
      .values({ certificate_id: row.id, status: row.status, reason: null, actor, at: row.created_at })
      .execute();

    let policies: string[] = [];
    if (copyPolicies) {
      const attached = await trx
        .selectFrom('policy_attachments')
        .select('policy_name')
        .distinct()
        .where('target_type', '=', 'certificate')
        .where('target_id', 'in', revoke.map((r) => r.id))
        .orderBy('policy_name')
        .execute();
      policies = attached.map((a) => a.policy_name);
      if (policies.length > 0) {
        await trx
          .insertInto('policy_attachments')
          .values(policies.map((name) => ({ policy_name: name, target_type: 'certificate' as const, target_id: row.id, created_at: at })))
          .execute();
      }
    }
    return { revoked: revoke.map((r) => revoked.get(r.id) as CertificateRecord), policies };
  });
}

/** Why the compare-and-set on an old certificate matched no row. */
async function refusal(trx: Db, id: string, expected: string, thing: string): Promise<CertfleetError> {
  const current = await trx.selectFrom('certificates').select(['status', 'thing_name']).where('id', '=', id).executeTakeFirst();
  if (current === undefined) return new CertfleetError('not-found', `certificate ${id} not found`);
  if (current.thing_name !== thing) {
    return new CertfleetError('invalid-state', `certificate ${id} is not on thing ${thing}`);
  }
  return new CertfleetError('invalid-state', `certificate ${id} is ${current.status}, not ${expected}`);
}

function checkReplacement(r: CertificateReplacement): CertificateReplacement {
  const bad = (why: string) => new CertfleetError('bad-request', `replacement: ${why}`);
  if (typeof r !== 'object' || r === null) throw bad('must be an object');
  const { newCertificate, revoke } = r;
  if (typeof newCertificate?.thingName !== 'string' || newCertificate.thingName === '') {
    throw bad('the new certificate must belong to a thing');
  }
  if (newCertificate.status === 'revoked') throw bad('the new certificate cannot be revoked');
  if (!Array.isArray(revoke) || revoke.length === 0) throw bad('at least one certificate to revoke');
  const ids = new Set<string>();
  for (const old of revoke) {
    if (typeof old?.id !== 'string' || old.id === '') throw bad('each revoked certificate needs an id');
    if (ids.has(old.id)) throw bad(`certificate ${old.id} named twice`);
    if (old.id === newCertificate.id) throw bad('the new certificate cannot replace itself');
    if (old.expectedStatus === 'revoked') throw bad(`certificate ${old.id} is already revoked`);
    if (typeof old.revocationReason !== 'string' || old.revocationReason === '') throw bad('each revocation needs a reason');
    ids.add(old.id);
  }
  if (typeof r.actor !== 'string' || r.actor === '') throw bad('actor must be a non-empty string');
  if (typeof r.copyPolicies !== 'boolean') throw bad('copyPolicies must be true or false');
  return r;
}
