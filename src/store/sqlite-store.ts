// Embedded SQLite: one writer connection behind group commit, and a separate read-only connection
// so queries never queue behind writes (WAL lets them run side by side).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from '../app/ports.js';
import { repositories } from './repositories.js';
import { GroupCommitter } from './group-commit.js';
import { migrateToLatest } from './migrate.js';
import { translateDriverError } from './driver-errors.js';
import { heartbeat } from './heartbeat.js';
import { withStatementCache } from './statement-cache.js';

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'fapiao.db');
}

function openWriter(dataDir: string): { connection: SQLite.Database; db: Kysely<Database> } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const connection = new SQLite(sqliteFile(dataDir));
  connection.pragma('journal_mode = WAL');
  connection.pragma('synchronous = FULL'); // an answer means the invoice is on disk
  connection.pragma('busy_timeout = 5000'); // for migrations at start-up; see openSqliteStore
  connection.pragma('foreign_keys = ON');
  return { connection, db: new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(connection) }) }) };
}

export async function migrateSqlite(dataDir: string): Promise<string[]> {
  const { db } = openWriter(dataDir);
  try {
    return await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

/**
 * Who copies the write-ahead log back into the database file. SQLite does it by default in whichever
 * connection's commit finds the log past 1000 pages ('on-commit'): in a server whose HTTP processes
 * share the file with a background process, that could be an issue whose answer then waits for
 * megabytes of a drain's writes to be copied and synced. So the HTTP processes leave it to others
 * ('elsewhere': only past CHECKPOINT_FALLBACK_PAGES, should the other process be gone a while) and
 * the background process checkpoints on its own commits and on a timer ('periodic').
 */
export type WalCheckpoints = 'on-commit' | 'periodic' | 'elsewhere';

const CHECKPOINT_INTERVAL_MS = 250;
const CHECKPOINT_FALLBACK_PAGES = 20_000; // 80 MB of log
const RESTART_AFTER_PAGES = 2_000;
const RESTART_LOCK_WAIT_MS = 50;

/**
 * PASSIVE: copies what no reader still needs, never waits for a lock nor holds up a writer. But
 * the log only starts over when a writer finds all of it copied, which under a steady stream of
 * commits from other processes never happens, and it grew to the fallback size. So past
 * RESTART_AFTER_PAGES it is RESTART: it waits up to RESTART_LOCK_WAIT_MS for the write lock
 * between two commits of the others (a wait inside this process's event loop, acceptable in the
 * background process and nowhere else; else it stays passive until the next round), copies the
 * few frames left, and the next commit writes the log from its start. Not inside this
 * connection's own transaction (the group committer awaits between statements); a failure (a full
 * disk) leaves the log as it is for the next round or the next commit.
 */
function checkpoint(connection: SQLite.Database): void {
  if (!connection.open || connection.inTransaction) return;
  try {
    const [passive] = connection.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
    if ((passive?.log ?? 0) > RESTART_AFTER_PAGES) {
      connection.pragma(`busy_timeout = ${RESTART_LOCK_WAIT_MS}`);
      try {
        connection.pragma('wal_checkpoint(RESTART)');
      } finally {
        connection.pragma('busy_timeout = 0');
      }
    }
  } catch {
    // the log stays whole and is copied later; commits go on regardless
  }
}

export async function openSqliteStore(dataDir: string, migrate: boolean, walCheckpoints: WalCheckpoints = 'on-commit'): Promise<Store> {
  const { connection, db } = openWriter(dataDir);
  if (migrate) await migrateToLatest(db);
  // From here on no busy handler: it would sleep inside the event loop. GroupCommitter waits for
  // the write lock itself (see group-commit.ts).
  connection.pragma('busy_timeout = 0');
  if (walCheckpoints === 'elsewhere') connection.pragma(`wal_autocheckpoint = ${CHECKPOINT_FALLBACK_PAGES}`);
  const checkpoints = walCheckpoints === 'periodic' ? setInterval(() => checkpoint(connection), CHECKPOINT_INTERVAL_MS) : undefined;
  checkpoints?.unref();
  const readerConnection = new SQLite(sqliteFile(dataDir), { readonly: true });
  readerConnection.pragma('busy_timeout = 5000');
  const reader = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(readerConnection) }) });
  const committer = new GroupCommitter(db);

  const write: Store['write'] = async (work) => {
    try {
      return await committer.run((trx) => work(repositories(trx, 'sqlite')));
    } catch (error) {
      throw translateDriverError(error);
    }
  };
  return {
    dialect: 'sqlite',
    read: repositories(reader, 'sqlite'),
    write,
    checkWritable: () => heartbeat(write, reader),
    async close() {
      clearInterval(checkpoints);
      await reader.destroy();
      await db.destroy();
      // Kysely closes only connections it has used; a store that never wrote still holds its writer.
      for (const open of [connection, readerConnection]) if (open.open) open.close();
    },
  };
}
