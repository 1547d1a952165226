import { toBlob, toIso } from './columns.js';
import { guarded } from './driver-errors.js';
import type { IssuanceIntent } from './records.js';
import type { Db } from './schema.js';

/*
 * SQL for `issuance_journal`. Boulder's issuance cycle: the serial and the
 * to-be-signed bytes are durable before the signature exists, so a crash
 * after signing never leaves a certificate nobody knows about, and the
 * primary key makes reusing a serial impossible ('conflict').
 */

export async function recordIntent(db: Db, intent: IssuanceIntent): Promise<void> {
  await guarded(`serial ${intent.serial}`, () =>
    db
      .insertInto('issuance_journal')
      .values({
        serial: intent.serial,
        issuer_id: intent.issuerId,
        profile: intent.profile,
        tbs_der: toBlob(intent.tbsDer),
        created_at: toIso(intent.createdAt, 'createdAt'),
      })
      .execute(),
  );
}

export async function hasSerial(db: Db, serial: string): Promise<boolean> {
  const row = await guarded(`serial ${serial}`, () =>
    db.selectFrom('issuance_journal').select('serial').where('serial', '=', serial).executeTakeFirst(),
  );
  return row !== undefined;
}
