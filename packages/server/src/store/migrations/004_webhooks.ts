import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { MigrationContext } from './context.js';

/*
 * Schema v5: webhooks and their persisted delivery queue (events/webhooks.ts).
 * An event is written to `webhook_deliveries` before any attempt to send it,
 * so a restart (or a crash) between the event and its delivery loses nothing:
 * whichever node's worker finds the row due delivers it.
 *
 * Expand only (migrations/index.ts): two new tables, nothing else changes.
 * Same conventions as 001: text is COLLATE "C" on PostgreSQL, SQLite tables
 * are STRICT, primary keys are NOT NULL explicitly, times are ISO-8601 text.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export async function up(db: AnyDb, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const strict = <T extends CreateTableBuilder<any, any>>(t: T): T =>
    pg ? t : (t.modifyEnd(sql`strict`) as T);

  // `events`: JSON array of event names, or ["*"]. `secret` is kept as given:
  // certfleet must sign every delivery with it (HMAC), so it cannot be hashed.
  await strict(
    db.schema
      .createTable('webhooks')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('url', text, (c) => c.notNull())
      .addColumn('events', text, (c) => c.notNull())
      .addColumn('secret', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();

  // `event`: the exact JSON body sent (and signed), the same on every retry.
  // `next_attempt_at` is null once delivered or given up: only rows that are
  // still due carry a time, so the worker's query reads the index alone.
  await strict(
    db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', text, (c) => c.primaryKey().notNull())
      .addColumn('webhook_id', text, (c) => c.notNull().references('webhooks.id'))
      .addColumn('event', text, (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', text)
      .addColumn('last_error', text)
      .addColumn('delivered_at', text)
      .addColumn('created_at', text, (c) => c.notNull()),
  ).execute();
  // The worker's question every second: what is due now, oldest first.
  await db.schema
    .createIndex('webhook_deliveries_due_idx')
    .on('webhook_deliveries')
    .columns(['next_attempt_at', 'id'])
    .execute();
  // A webhook's recent deliveries (API), and removing them with the webhook.
  await db.schema
    .createIndex('webhook_deliveries_webhook_idx')
    .on('webhook_deliveries')
    .columns(['webhook_id', 'created_at', 'id'])
    .execute();
  // Pruning finished rows past their retention.
  await db.schema.createIndex('webhook_deliveries_created_idx').on('webhook_deliveries').column('created_at').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.dropTable('webhooks').execute();
}
