import type { StoreDialect } from '../schema.js';

/** What a migration may need to know beyond the Kysely instance. */
export interface MigrationContext {
  dialect: StoreDialect;
}
