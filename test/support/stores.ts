// Integration tests run the same body on every database we support: SQLite always, and
// PostgreSQL when TEST_DATABASE_URL is set, each in a schema of its own so tests and runs never meet.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely } from 'kysely';
import type { Store } from '../../src/app/ports.js';
import { openStore, sqliteFile } from '../../src/store/database.js';
import { SqliteDialectWithTransactionalDdl } from '../../src/store/sqlite-store.js';
import { SearchPathDialect } from '../../src/store/postgres-store.js';

export interface OpenedStore {
  store: Store;
  dataDir: string;
  /** Runs SQL behind the application's back (tamper tests). */
  exec(statement: string): Promise<void>;
  /** A connection of its own to the store's database (and its PostgreSQL schema), e.g. to migrate it. */
  connect(): { db: Kysely<any>; schema?: string };
  /** Another store over the same database, e.g. after a migration changed tables the first has prepared statements for. */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface StoreUnderTest {
  name: string;
  open(): Promise<OpenedStore>;
}

const sqlite: StoreUnderTest = {
  name: 'sqlite',
  async open() {
    const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-test-'));
    const store = await openStore({ dataDir });
    return {
      store,
      dataDir,
      connect: () => ({ db: new Kysely<any>({ dialect: new SqliteDialectWithTransactionalDdl({ database: new SQLite(sqliteFile(dataDir)) }) }) }),
      reopen: () => openStore({ dataDir }),
      async exec(statement) {
        const db = new SQLite(sqliteFile(dataDir));
        try {
          db.exec(statement);
        } finally {
          db.close();
        }
      },
      async cleanup() {
        await store.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

export function postgres(url: string, options: { namedStatements?: boolean } = {}): StoreUnderTest {
  const withClient = async (schema: string | undefined, work: (client: pg.Client) => Promise<unknown>) => {
    const client = new pg.Client({ connectionString: url, ...(schema && { options: `-c search_path=${schema}` }) });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    async open() {
      const schema = `fapiao_test_${process.env.FAPIAO_TEST_RUN ?? 'adhoc'}_${randomBytes(6).toString('hex')}`;
      await withClient(undefined, (c) => c.query(`create schema ${schema}`));
      const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-test-'));
      const store = await openStore({ dataDir, databaseUrl: url, schema, ...options });
      return {
        store,
        dataDir,
        exec: (statement) => withClient(schema, (c) => c.query(statement)),
        // Kysely's own introspector lists every schema's tables and races the other runs' DDL (postgres-store.ts).
        connect: () => ({ db: new Kysely<any>({ dialect: new SearchPathDialect({ pool: new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 1 }) }) }), schema }),
        reopen: () => openStore({ dataDir, databaseUrl: url, schema, ...options }),
        // The schema itself is dropped with all of this run's at the end (global-setup.ts).
        async cleanup() {
          await store.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  };
}

export const storesUnderTest: StoreUnderTest[] = process.env.TEST_DATABASE_URL ? [sqlite, postgres(process.env.TEST_DATABASE_URL)] : [sqlite];
