import Database from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Kysely,
  type Driver,
  type SqliteDatabase,
  type SqliteDialectConfig,
  type SqliteStatement,
  sql,
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
    const database = config.database;
    const cached = typeof database === 'function' ? async () => new CachedStatements(await database()) : new CachedStatements(database);
    const withCache = { ...config, database: cached };
    super(withCache);
    this.#config = withCache;
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

/** Distinct SQL texts kept prepared; Kysely's are few (placeholders, not values), IN lists of each length aside. */
const STATEMENT_CACHE = 512;

/**
 * Kysely's SQLite driver prepares every query again, and better-sqlite3's
 * prepare parses and plans the SQL each time: about a quarter of the CPU a
 * device connect spent in SQL (bench/mqtt-connect.ts profile, `prepare` 7.6 %
 * of the whole process). This keeps one prepared statement per SQL text, least
 * recently used out. better-sqlite3 statements are re-prepared by SQLite itself
 * after a schema change (sqlite3_prepare_v3, https://www.sqlite.org/c3ref/prepare.html),
 * and Kysely sets no per-statement mode (raw, pluck, expand) that would carry
 * over. A statement in the middle of an iteration (streamQuery) is busy and
 * cannot run again: that SQL then gets a fresh statement of its own.
 */
export class CachedStatements implements SqliteDatabase {
  readonly #statements = new Map<string, SqliteStatement & { readonly busy?: boolean }>();

  constructor(private readonly db: SqliteDatabase) {}

  prepare(sql: string): SqliteStatement {
    const hit = this.#statements.get(sql);
    if (hit !== undefined) {
      if (hit.busy) return this.db.prepare(sql);
      this.#statements.delete(sql);
      this.#statements.set(sql, hit);
      return hit;
    }
    const statement = this.db.prepare(sql);
    this.#statements.set(sql, statement);
    if (this.#statements.size > STATEMENT_CACHE) this.#statements.delete(this.#statements.keys().next().value!);
    return statement;
  }

  close(): void {
    this.#statements.clear();
    this.db.close();
  }
}

/**
 * Runs `work` in a transaction whose commit, on SQLite, is written to the WAL
 * without waiting for fsync: for records certfleet acknowledges to no one
 * (connection records, broker/connection-log.ts). better-sqlite3 is
 * synchronous, so at synchronous=FULL every commit's fsync blocks the event
 * loop (~4 ms under load) while no device is served.
 *
 * In WAL mode with synchronous=NORMAL a commit is appended to the WAL with
 * write(2) and synced only at the next checkpoint
 * (https://www.sqlite.org/pragma.html#pragma_synchronous,
 * https://www.sqlite.org/wal.html#performance_considerations): it survives a
 * kill of the process, and only an OS crash or a power loss may lose the
 * transactions committed so since the last sync. Those are connection
 * records: a connect lost so is absent, a disconnect lost so is closed as
 * `node-restart` when the node starts again. The next FULL commit syncs the
 * WAL file, these frames included.
 *
 * The setting is per connection and is put back to FULL before the
 * connection is released: Kysely's SQLite driver has one connection and lends
 * it to one caller at a time, so nothing acknowledged (certificates, the
 * issuance journal, the registry) ever commits at NORMAL. The same connection
 * rather than a second one: better-sqlite3 waits for a lock by sleeping on
 * the event loop's thread (busy_timeout), and the holder of the lock, a
 * Kysely transaction on the other connection of this same process, could not
 * go on until that wait ended: a second connection stalls for busy_timeout
 * and then fails with SQLITE_BUSY.
 *
 * Elsewhere (PostgreSQL, or inside a caller's transaction) a plain transaction.
 */
export async function unsyncedTransaction<DB, T>(db: Kysely<DB>, work: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return work(db);
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return db.transaction().execute(work);
  return db.connection().execute(async (conn) => {
    await sql`pragma synchronous = normal`.execute(conn);
    try {
      return await conn.transaction().execute(work);
    } finally {
      await sql`pragma synchronous = full`.execute(conn);
    }
  });
}
