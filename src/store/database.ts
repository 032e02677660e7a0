// Opens the store the configuration names: PostgreSQL when DATABASE_URL is set, otherwise the
// embedded SQLite file under the data directory.
import type { Store } from '../app/ports.js';
import { migrateSqlite, openSqliteStore, sqliteFile } from './sqlite-store.js';
import { migratePostgres, openPostgresStore } from './postgres-store.js';
import type { CommitObserver, LockHold } from './group-commit.js';

export { sqliteFile };

export interface StoreConfig {
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL only: the schema to use instead of the default search_path. */
  schema?: string;
  /** PostgreSQL only: prepare the hot statements by name (default on). */
  namedStatements?: boolean;
}

/** SQLite only: `commits` hears what each group commit cost (metrics), `lockHold` when the write lock is held. */
export async function openStore(config: StoreConfig, options: { migrate?: boolean; commits?: CommitObserver; lockHold?: LockHold } = {}): Promise<Store> {
  const migrate = options.migrate !== false;
  return config.databaseUrl
    ? openPostgresStore({ url: config.databaseUrl, schema: config.schema, namedStatements: config.namedStatements }, migrate)
    : openSqliteStore(config.dataDir, migrate, options);
}

/** Applies pending migrations and says which ran (`fapiao migrate`). */
export async function migrateDatabase(config: StoreConfig): Promise<string[]> {
  return config.databaseUrl ? migratePostgres({ url: config.databaseUrl, schema: config.schema }) : migrateSqlite(config.dataDir);
}
