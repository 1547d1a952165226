import type { Migration } from 'kysely';
import type { MigrationContext } from './context.js';
import * as m001 from './001_initial.js';
import * as m002 from './002_registry.js';
import * as m003 from './003_connections.js';
import * as m004 from './004_webhooks.js';
import * as m005 from './005_provisioning.js';
import * as m006 from './006_external_cas.js';
import * as m007 from './007_enrollment.js';
import * as m008 from './008_campaigns.js';
import * as m009 from './009_rollover.js';
import * as m011 from './011_renew_after_expiry.js';

/*
 * The ordered list of schema versions. Names sort in application order
 * (Kysely's Migrator sorts them). To add a version: create NNN_name.ts
 * exporting up(db, ctx) (and down if it can be undone), add it here. Each
 * version must keep the code of the previous release working (expand, then
 * contract in a later release), because several nodes may share one
 * PostgreSQL while they are upgraded one by one.
 */
export function migrations(ctx: MigrationContext): Record<string, Migration> {
  return {
    '001_initial': { up: (db) => m001.up(db, ctx), down: (db) => m001.down(db) },
    '002_registry': { up: (db) => m002.up(db, ctx), down: (db) => m002.down(db) },
    '003_connections': { up: (db) => m003.up(db, ctx), down: (db) => m003.down(db) },
    '004_webhooks': { up: (db) => m004.up(db, ctx), down: (db) => m004.down(db) },
    '005_provisioning': { up: (db) => m005.up(db, ctx), down: (db) => m005.down(db) },
    '006_external_cas': { up: (db) => m006.up(db, ctx), down: (db) => m006.down(db) },
    '007_enrollment': { up: (db) => m007.up(db, ctx), down: (db) => m007.down(db) },
    '008_campaigns': { up: (db) => m008.up(db, ctx), down: (db) => m008.down(db) },
    '009_rollover': { up: (db) => m009.up(db, ctx), down: (db) => m009.down(db) },
    '011_renew_after_expiry': { up: (db) => m011.up(db, ctx), down: (db) => m011.down(db) },
  };
}
