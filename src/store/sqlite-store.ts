// Embedded SQLite: one writer connection behind group commit, and a separate read-only connection
// so queries never queue behind writes (WAL lets them run side by side).
import { mkdirSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteAdapter, SqliteDialect, type DialectAdapter } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from '../app/ports.js';
import { Fault, faults } from '../domain/faults.js';
import { repositories } from './repositories.js';
import { GroupCommitter, type CommitObserver, type LockHold } from './group-commit.js';
import { walSync } from './wal-sync.js';
import { WAL_BACKSTOP_PAGES } from './wal-checkpoints.js';
import { migrateToLatest } from './migrate.js';
import { translateDriverError } from './driver-errors.js';
import { heartbeat } from './heartbeat.js';
import { withStatementCache } from './statement-cache.js';
import { ApiKeyCache } from './api-key-cache.js';
import { apiKeyRevocationsFile, fileRevocationFeed, signallingRevocations, signalRevocation } from './sqlite-api-key-revocations.js';

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'fapiao.db');
}

/**
 * Kysely runs SQLite migrations outside a transaction: its adapter says SQLite has no transactional
 * DDL, which SQLite does have. A migration stopped halfway (a crash, a full disk, a failing step)
 * would leave a half-changed schema that no later start can migrate. With this dialect each
 * migration and its bookkeeping commit together or not at all, as on PostgreSQL.
 */
export class SqliteDialectWithTransactionalDdl extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new (class extends SqliteAdapter {
      override get supportsTransactionalDdl(): boolean {
        return true;
      }
    })();
  }
}

function openWriter(dataDir: string): { connection: SQLite.Database; db: Kysely<Database> } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const connection = new SQLite(sqliteFile(dataDir));
  connection.pragma('journal_mode = WAL');
  connection.pragma('synchronous = FULL'); // migrations; the store's writer then syncs itself (wal-sync.ts)
  connection.pragma('busy_timeout = 5000'); // for migrations at start-up; see openSqliteStore
  connection.pragma('foreign_keys = ON');
  return { connection, db: new Kysely<Database>({ dialect: new SqliteDialectWithTransactionalDdl({ database: withStatementCache(connection) }) }) };
}

/**
 * Below this much free space on the data directory's disk, /readyz reports the store full (5002).
 * The heartbeat alone would not tell: once checkpointed, the WAL is written again from its start,
 * so a small write still fits in space the file already holds while an issue batch no longer does.
 */
const READY_MIN_FREE_BYTES = 1024 * 1024;

async function refuseWhenDiskFull(dataDir: string): Promise<void> {
  const { bavail, bsize } = await statfs(dataDir);
  if (bavail * bsize < READY_MIN_FREE_BYTES) throw new Fault(faults.STORAGE_FULL);
}

/** The revocation is committed: a failure now must not report it as failed (the line appended before the commit was heard). */
function signalAfterCommit(file: string): void {
  try {
    signalRevocation(file);
  } catch {
    // see sqlite-api-key-revocations.ts: only a key read between that line and the commit may stay, for at most a minute
  }
}

export async function migrateSqlite(dataDir: string): Promise<string[]> {
  const { db } = openWriter(dataDir);
  try {
    return await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

export async function openSqliteStore(dataDir: string, migrate: boolean, { commits, lockHold }: { commits?: CommitObserver; lockHold?: LockHold } = {}): Promise<Store> {
  const { connection, db } = openWriter(dataDir);
  if (migrate) await migrateToLatest(db);
  // From here on no busy handler: it would sleep inside the event loop. GroupCommitter waits for
  // the write lock itself (see group-commit.ts).
  connection.pragma('busy_timeout = 0');
  // An answer still means the invoice is on disk: the committer settles a batch only after the
  // WAL's fsync, which runs off the event loop and outside SQLite's write lock.
  connection.pragma('synchronous = NORMAL');
  connection.pragma(`wal_autocheckpoint = ${WAL_BACKSTOP_PAGES}`); // the server checkpoints off the event loop (wal-checkpoints.ts)
  const durability = walSync(sqliteFile(dataDir));
  const readerConnection = new SQLite(sqliteFile(dataDir), { readonly: true });
  readerConnection.pragma('busy_timeout = 5000');
  const reader = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(readerConnection) }) });
  const committer = new GroupCommitter(db, durability.flush, commits, lockHold);
  const revocations = apiKeyRevocationsFile(dataDir);
  const apiKeyCache = new ApiKeyCache(fileRevocationFeed(revocations));

  const write: Store['write'] = async (work) => {
    let revokedHere = false;
    try {
      const result = await committer.run((trx) => work(signallingRevocations(repositories(trx, 'sqlite'), revocations, () => (revokedHere = true))));
      if (revokedHere) signalAfterCommit(revocations);
      return result;
    } catch (error) {
      throw translateDriverError(error);
    }
  };
  const read = repositories(reader, 'sqlite');
  return {
    dialect: 'sqlite',
    readsKeysBeforeLock: false,
    read: { ...read, apiKeys: { ...read.apiKeys, get: (id) => apiKeyCache.get(id, () => read.apiKeys.get(id)) } },
    write,
    async checkWritable() {
      await refuseWhenDiskFull(dataDir);
      await heartbeat(write, reader);
    },
    async close() {
      await apiKeyCache.close();
      await reader.destroy();
      await db.destroy();
      await durability.close();
      // Kysely closes only connections it has used; a store that never wrote still holds its writer.
      for (const open of [connection, readerConnection]) if (open.open) open.close();
    },
  };
}
