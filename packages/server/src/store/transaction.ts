import { appendAudit, prepareAudit } from './audit.js';
import type { AuditInput } from './audit-records.js';
import { guarded } from './driver-errors.js';
import type { Db, StoreDialect } from './schema.js';

/** What a writing store function needs besides its arguments. */
export interface StoreContext {
  readonly db: Db;
  readonly dialect: StoreDialect;
  /** The store's clock, for times it stamps itself. */
  readonly now: () => Date;
}

/** Runs `work` in a transaction, or inside the caller's when `db` already is one (Kysely does not nest them). */
export function transaction<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

/**
 * The shape of every audited change: `work` and the audit entry commit
 * together or not at all. The entry is validated before the transaction
 * opens, so bad audit input costs no lock. The chain lock is taken last,
 * after the change's own statements, so it is held only for the append.
 */
export async function write<T>(
  ctx: StoreContext,
  subject: string,
  audit: AuditInput | undefined,
  work: (trx: Db) => Promise<T>,
): Promise<T> {
  const entry = audit === undefined ? undefined : prepareAudit(audit, ctx.now);
  return guarded(subject, () =>
    transaction(ctx.db, async (trx) => {
      const result = await work(trx);
      if (entry !== undefined) await appendAudit(trx, ctx.dialect, entry);
      return result;
    }),
  );
}
