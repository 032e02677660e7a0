// Integration tests run the same body on every database we support: SQLite always, and
// PostgreSQL when TEST_DATABASE_URL is set.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/app/ports.js';
import { openStore } from '../../src/store/database.js';

export interface StoreUnderTest {
  name: string;
  open(): Promise<{ store: Store; cleanup(): Promise<void>; dataDir: string }>;
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
        async cleanup() {
          await store.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];
