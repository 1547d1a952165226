import Database from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';

/**
 * Opens a SQLite file configured so an acknowledged write survives kill -9
 * and power loss (DESIGN.md, security baseline):
 * - journal_mode=WAL: readers do not block the writer;
 * - synchronous=FULL: in WAL mode NORMAL may lose the last commits on power
 *   loss; FULL syncs the WAL at every commit
 *   (https://www.sqlite.org/pragma.html#pragma_synchronous);
 * - foreign_keys=ON: off by default in SQLite, per connection;
 * - busy_timeout=5000: another process holding the write lock (a CLI command
 *   next to the server) makes us wait instead of failing at once.
 */
export function openSqliteDatabase(path: string): Database.Database {
  const db = new Database(path);
  try {
    // First, so that switching the journal mode also waits for other writers.
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** The settings openSqliteDatabase promises, as SQLite reports them (for tests and health checks). */
export function sqliteDurability(db: Database.Database): {
  journalMode: string;
  synchronous: number;
  foreignKeys: number;
  busyTimeout: number;
} {
  return {
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: Number(db.pragma('synchronous', { simple: true })),
    foreignKeys: Number(db.pragma('foreign_keys', { simple: true })),
    busyTimeout: Number(db.pragma('busy_timeout', { simple: true })),
  };
}

/**
 * Kysely's SQLite dialect, except that transactions begin with BEGIN
 * IMMEDIATE: the write lock is taken at the start, so a transaction that
 * reads then writes (the audit chain head, a group's ancestry) can never act
 * on a snapshot another process has since changed. With a plain (deferred)
 * BEGIN the upgrade to a writer would instead fail with SQLITE_BUSY_SNAPSHOT
 * (https://www.sqlite.org/lang_transaction.html). Store transactions all
 * write, so nothing is lost by locking early; plain reads take no transaction.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}
