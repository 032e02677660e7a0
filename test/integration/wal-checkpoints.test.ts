// The embedded store's writers leave the WAL's checkpoints to a checkpointer thread: a commit never
// copies pages into the database file on a process's event loop (below the backstop), and the
// checkpointer, which blocks no one, moves them there within moments.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { sqliteFile } from '../../src/store/database.js';
import { startWalCheckpointer } from '../../src/store/wal-checkpoints.js';
import { systemClock } from '../../src/domain/time.js';

const sqlite = storesUnderTest.find((kind) => kind.name === 'sqlite')!;
const PAGE = 4096;

describe('WAL checkpoints of the embedded store', () => {
  let opened: OpenedStore;
  let merchantId: string;
  const sizeOf = (suffix = '') => statSync(sqliteFile(opened.dataDir) + suffix).size;

  beforeEach(async () => {
    opened = await sqlite.open();
    merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
  });
  afterEach(() => opened.cleanup());

  /** About 2,000 pages of saved items, more than SQLite's default threshold of 1,000. */
  async function writeManyPages(): Promise<void> {
    for (let batch = 0; batch < 20; batch += 1) {
      await opened.store.write(async (tx) => {
        for (let i = 0; i < 100; i += 1) {
          const id = `item-${batch}-${i}`;
          await tx.savedItems.upsert(merchantId, { id, name: `${id} ${'货'.repeat(1300)}`, taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' });
        }
      });
    }
  }

  it('leaves the pages in the WAL when no checkpointer runs, below the backstop', async () => {
    const before = sizeOf();
    await writeManyPages();
    expect(sizeOf('-wal')).toBeGreaterThan(1_500 * PAGE);
    expect(sizeOf()).toBe(before);
  });

  it('has the checkpointer move them into the database file within moments, and stops it cleanly', async () => {
    await writeManyPages();
    const failures: string[] = [];
    const checkpointer = startWalCheckpointer(sqliteFile(opened.dataDir), (message) => failures.push(message), 20);
    try {
      const deadline = Date.now() + 5_000;
      while (sizeOf() < 1_500 * PAGE && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(sizeOf()).toBeGreaterThan(1_500 * PAGE);
    } finally {
      await checkpointer.stop();
    }
    expect(failures).toEqual([]);
    // The store writes on after the checkpoints, and reads what it wrote.
    await opened.store.write(async (tx) => tx.savedItems.upsert(merchantId, { id: 'after', name: 'after', taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' }));
    expect((await opened.store.read.savedItems.list(merchantId, undefined, 3000)).length).toBe(2_001);
  });

  it('reports a checkpointer that cannot open its database, and stops all the same', async () => {
    const failures: string[] = [];
    const checkpointer = startWalCheckpointer(join(opened.dataDir, 'missing', 'fapiao.db'), (message) => failures.push(message), 20);
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]).toMatch(/unable to open|directory does not exist/i);
    await checkpointer.stop();
  });
});
