// SQLite backups: the online backup API on a fresh connection to the live file, and a restore
// that swaps a verified copy in with one rename while holding the database exclusively.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chmod, mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { bilingual, Fault, faults } from '../../domain/faults.js';
import { sqliteFile } from '../sqlite-store.js';
import type { DialectBackup } from './dialect.js';
import type { DataFacts, Progress } from './manifest.js';
import { megabytes, sync } from './files.js';

/** ~400 KB per step: each step runs on the event loop, so a server doing this keeps answering. */
const PAGES_PER_STEP = 100;
const PROGRESS_EVERY_MS = 2_000;

export function sqliteBackup(dataDir: string): DialectBackup {
  const live = sqliteFile(dataDir);
  return {
    dialect: 'sqlite',
    dataFile: 'fapiao.db',
    copiesDataFile: true, // opening a SQLite file may write to it; the stored one stays untouched
    snapshot: (target, progress) => snapshot(live, target, progress),
    async scratch(plainFile) {
      const scratchDir = dirname(plainFile);
      return {
        config: { dataDir: scratchDir },
        facts: async () => withDatabase(plainFile, readFacts),
        discard: async () => undefined, // the caller removes the work directory
      };
    },
    async checkNotInUse() {
      if (existsSync(live)) lockExclusively(live).close();
    },
    moveIn: (scratch, progress) => moveIn(live, sqliteFile(scratch.config.dataDir), progress),
  };
}

async function snapshot(live: string, target: string, progress: Progress) {
  if (!existsSync(live)) throw new Error(`there is no database at ${live}`);
  const source = new SQLite(live, { fileMustExist: true });
  let facts: DataFacts;
  let version: string;
  try {
    source.pragma('busy_timeout = 5000');
    // The backup API starts again from page 1 whenever another connection commits between two of
    // its steps, so under steady issuing it may never finish. Inside one read transaction this
    // connection keeps one WAL snapshot instead: nothing restarts, writers carry on undisturbed,
    // and the facts read here describe exactly the pages that are copied.
    source.exec('BEGIN');
    facts = readFacts(source);
    version = source.prepare('select sqlite_version()').pluck().get() as string;
    let reported = Date.now();
    await source.backup(target, {
      progress({ totalPages, remainingPages }) {
        if (Date.now() - reported > PROGRESS_EVERY_MS) {
          reported = Date.now();
          progress(`copied ${totalPages - remainingPages} of ${totalPages} pages`);
        }
        return PAGES_PER_STEP;
      },
    });
    source.exec('COMMIT');
  } finally {
    if (source.inTransaction) source.exec('ROLLBACK');
    source.close();
  }
  // The copy keeps the live file's WAL flag; a rollback-journal file stands alone, and any sqlite3
  // can open it read-only without creating files beside it.
  withDatabase(target, (db) => db.pragma('journal_mode = DELETE'));
  await chmod(target, 0o600); // the backup API creates it with the process umask
  return { facts, tools: { sqlite: version, 'better-sqlite3': betterSqliteVersion() } };
}

function betterSqliteVersion(): string {
  return (createRequire(import.meta.url)('better-sqlite3/package.json') as { version: string }).version;
}

function readFacts(db: SQLite.Database): DataFacts {
  const tables = db.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`).pluck().all() as string[];
  const has = new Set(tables);
  const column = (query: string) => (db.prepare(query).pluck().all() as string[]).sort();
  return {
    rowCounts: Object.fromEntries(tables.sort().map((t) => [t, Number(db.prepare(`select count(*) from "${t.replaceAll('"', '""')}"`).pluck().get())])),
    chainHeads: has.has('chain_heads')
      ? (db.prepare('select scope, hash, length from chain_heads').all() as Array<{ scope: string; hash: string; length: number }>)
          .map((r) => ({ scope: r.scope, hash: r.hash, length: Number(r.length) }))
          .sort((a, b) => (a.scope < b.scope ? -1 : 1))
      : [],
    merchants: has.has('merchants') ? column('select id from merchants') : [],
    migrations: has.has('kysely_migration') ? column('select name from kysely_migration') : [],
  };
}

function withDatabase<T>(file: string, work: (db: SQLite.Database) => T): T {
  const db = new SQLite(file, { fileMustExist: true });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/**
 * In exclusive locking mode SQLite keeps the lock until the connection closes, and it cannot get it
 * while any other connection has the file open, even an idle one: a running server is found.
 */
function lockExclusively(file: string): SQLite.Database {
  const db = new SQLite(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 1000'); // lets a short command (a CLI query) finish; a server never lets go
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return db;
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Fault(faults.RESTORE_DATABASE_IN_USE, { reason: bilingual(`${file} 正被另一个进程打开（请先停止 fapiao 服务）`, `${file} is open in another process (stop the fapiao server first)`) });
    }
    throw error;
  }
}

async function moveIn(live: string, incoming: string, progress: Progress): Promise<string | undefined> {
  // The scratch copy ran in WAL mode; fold it into one file so nothing is left beside it.
  withDatabase(incoming, (db) => db.pragma('journal_mode = DELETE'));
  await mkdir(dirname(live), { recursive: true, mode: 0o700 });
  if (!existsSync(live)) {
    await rename(incoming, live);
    await sync(dirname(live));
    return undefined;
  }
  const holder = lockExclusively(live);
  try {
    // Checkpoints and removes the old -wal and -shm: a WAL left beside the new file would be
    // replayed into it on the next open.
    holder.pragma('journal_mode = DELETE');
    const previous = `${live}.before-restore-${new Date().toISOString().replace(/[-:]/g, '')}`;
    await rename(live, previous);
    try {
      await rename(incoming, live);
    } catch (error) {
      await rename(previous, live);
      throw error;
    }
    await sync(dirname(live));
    progress(`the replaced database is kept as ${previous} (${megabytes((await stat(previous)).size)})`);
    return previous;
  } finally {
    holder.close();
  }
}
