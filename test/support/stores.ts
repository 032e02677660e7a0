// Integration tests run the same body on every database we support: SQLite always, and
// PostgreSQL when TEST_DATABASE_URL is set.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/app/ports.js';
import SQLite from 'better-sqlite3';
import { openStore, sqliteFile } from '../../src/store/database.js';

export interface OpenedStore {
  store: Store;
  dataDir: string;
  /** Runs SQL behind the application's back (tamper tests). */
  exec(statement: string): Promise<void>;
  cleanup(): Promise<void>;
}

export interface StoreUnderTest {
  name: string;
  open(): Promise<OpenedStore>;
}

export const storesUnderTest: StoreUnderTest[] = [
  {
    name: 'sqlite',
    async open() {
      const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-test-'));
      const store = await openStore({ dataDir });
      return {
        store,
        dataDir,
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
  },
];
