// Opens the store. Embedded SQLite by default: one writer connection behind group commit, and a
// separate read-only connection so queries never queue behind writes (WAL lets them run together).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from '../app/ports.js';
import { repositories } from './repositories.js';
import { GroupCommitter } from './group-commit.js';
import { migrateToLatest } from './migrate.js';
import { translateDriverError } from './driver-errors.js';

const INSTANCE_ID = `${hostname()}:${process.pid}`;

export interface StoreConfig {
  dataDir: string;
}

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'fapiao.db');
}

/** Applies pending migrations and says which ran (`fapiao migrate`). */
export async function migrateDatabase(config: StoreConfig): Promise<string[]> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(sqliteFile(config.dataDir)) }) });
  try {
    return await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

export async function openStore(config: StoreConfig, options: { migrate?: boolean } = {}): Promise<Store> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = sqliteFile(config.dataDir);

  const writer = new SQLite(file);
  writer.pragma('journal_mode = WAL');
  writer.pragma('synchronous = FULL'); // an answer means the invoice is on disk
  writer.pragma('busy_timeout = 5000');
  writer.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: writer }) });
  if (options.migrate !== false) await migrateToLatest(db);

  const readerConnection = new SQLite(file, { readonly: true });
  readerConnection.pragma('busy_timeout = 5000');
  const reader = new Kysely<Database>({ dialect: new SqliteDialect({ database: readerConnection }) });

  const committer = new GroupCommitter(db);
  return {
    dialect: 'sqlite',
    read: repositories(reader),
    async write(work) {
      try {
        return await committer.run((trx) => work(repositories(trx)));
      } catch (error) {
        throw translateDriverError(error);
      }
    },
    async checkWritable() {
      try {
        const at = new Date().toISOString();
        await committer.run((trx) =>
          trx.insertInto('heartbeats').values({ instance: INSTANCE_ID, at }).onConflict((oc) => oc.column('instance').doUpdateSet({ at })).execute(),
        );
        await sql`select 1 from heartbeats limit 1`.execute(reader);
      } catch (error) {
        throw translateDriverError(error);
      }
    },
    async close() {
      await reader.destroy();
      await db.destroy();
    },
  };
}
