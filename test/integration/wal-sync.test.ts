// The embedded store answers a write only once the WAL holding it has been fsynced, and holds
// SQLite's write lock only until the commit, not through the fsync: another writer goes ahead while
// the disk works. A failed fsync answers with a storage fault, never with success, and the store
// writes nothing more until it is restarted.
import { existsSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { sqliteFile } from '../../src/store/database.js';
import { Fault } from '../../src/domain/faults.js';
import { addMerchant } from '../../src/app/merchants.js';
import { systemClock } from '../../src/domain/time.js';

const sqlite = storesUnderTest.find((kind) => kind.name === 'sqlite')!;

/** FileHandle.prototype, whose sync() is the fsync the store waits for. */
async function fileHandlePrototype(): Promise<{ sync(): Promise<void> }> {
  const handle = await open(process.execPath, 'r');
  await handle.close();
  return Object.getPrototypeOf(handle) as { sync(): Promise<void> };
}

const item = (id: string) => ({ id, name: `item ${id}`, taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' });

describe('the embedded store and its WAL fsync', () => {
  let opened: OpenedStore;
  let merchantId: string;

  beforeEach(async () => {
    opened = await sqlite.open();
    merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
    await opened.store.write(async (tx) => tx.savedItems.upsert(merchantId, item('warm-up'))); // the WAL file exists
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await opened.cleanup();
  });

  it('answers a write after the fsync that follows its commit, while another writer already holds the lock', async () => {
    const prototype = await fileHandlePrototype();
    const realSync = prototype.sync;
    let releaseSync!: () => void;
    const gate = new Promise<void>((resolve) => (releaseSync = resolve));
    const syncs: string[] = [];
    vi.spyOn(prototype, 'sync').mockImplementation(async function (this: unknown) {
      syncs.push('started');
      await gate;
      await realSync.call(this);
      syncs.push('done');
    });

    let answered = false;
    const write = opened.store.write(async (tx) => tx.savedItems.upsert(merchantId, item('held'))).then(() => (answered = true));
    await vi.waitFor(() => expect(syncs).toEqual(['started']));

    // Committed and the lock released: another connection sees the row and takes the write lock.
    const other = new SQLite(sqliteFile(opened.dataDir));
    try {
      expect(other.prepare(`select id from saved_items where id = 'held'`).get()).toEqual({ id: 'held' });
      other.exec('begin immediate');
      other.exec('rollback');
    } finally {
      other.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answered).toBe(false);

    releaseSync();
    await write;
    expect(syncs).toEqual(['started', 'done']);
  });

  it('fails only the write whose WAL file could not be opened, and opens it again for the next', async () => {
    const restarted = await opened.reopen(); // its WAL file is opened at its first write
    const wal = `${sqliteFile(opened.dataDir)}-wal`;
    try {
      renameSync(wal, `${wal}.away`); // open() fails as it would with too many open files
      const failed = await restarted.write(async (tx) => tx.savedItems.upsert(merchantId, item('unopened'))).catch((error: unknown) => error);
      expect(failed).toMatchObject({ code: 'ENOENT' });
      renameSync(`${wal}.away`, wal);
      await restarted.write(async (tx) => tx.savedItems.upsert(merchantId, item('opened')));
      await restarted.checkWritable();
    } finally {
      if (existsSync(`${wal}.away`)) renameSync(`${wal}.away`, wal);
      await restarted.close();
    }
  });

  it('answers a write whose fsync failed with a storage fault, and every later write too, until restarted', async () => {
    const prototype = await fileHandlePrototype();
    const failingSync = vi.spyOn(prototype, 'sync').mockRejectedValue(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    const unsure = () => opened.store.write(async (tx) => tx.savedItems.upsert(merchantId, item('unsure'))).catch((error: unknown) => error);

    const failed = await unsure();
    expect(failed).toBeInstanceOf(Fault);
    expect((failed as Fault).code).toBe(5001);

    failingSync.mockRestore(); // the disk answers again, but what it dropped cannot be vouched for
    expect(((await unsure()) as Fault).code).toBe(5001);
    await expect(opened.store.checkWritable()).rejects.toMatchObject({ code: 5001 });

    const restarted = await opened.reopen();
    try {
      await restarted.write(async (tx) => tx.savedItems.upsert(merchantId, item('after restart')));
    } finally {
      await restarted.close();
    }
  });
});
