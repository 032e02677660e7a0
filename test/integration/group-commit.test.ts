// Writes that arrive together are committed together, yet each succeeds or fails on its own; on
// SQLite each group commit tells what it waited for and how long it held the write lock.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { systemClock } from '../../src/domain/time.js';
import { openStore, sqliteFile } from '../../src/store/database.js';
import { GroupCommitter, type CommitObserver } from '../../src/store/group-commit.js';
import type { Database } from '../../src/store/schema.js';

for (const kind of storesUnderTest) {
  describe(`concurrent writes on ${kind.name}`, () => {
    let opened: OpenedStore;
    let merchantId: string;

    beforeEach(async () => {
      opened = await kind.open();
      merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
    });
    afterEach(() => opened.cleanup());

    it('rolls back only the unit that failed, and answers each unit with its own outcome', async () => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          opened.store.write(async (tx) => {
            await tx.savedItems.upsert(merchantId, { id: `i${i}`, name: `item ${i}`, taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' });
            if (i % 3 === 0) throw new Error(`unit ${i} fails after writing`);
            return i;
          }),
        ),
      );
      outcomes.forEach((outcome, i) => {
        if (i % 3 === 0) expect(outcome).toMatchObject({ status: 'rejected', reason: { message: `unit ${i} fails after writing` } });
        else expect(outcome).toEqual({ status: 'fulfilled', value: i });
      });
      const stored = await opened.store.read.savedItems.list(merchantId, undefined, 100);
      expect(stored.map((s) => s.id).sort()).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `i${i}`).sort());
    });

    it('makes a numbering increment roll back with its failed unit, so numbers stay gap-free', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          opened.store.write(async (tx) => {
            const sequence = await tx.series.next(merchantId, 2026);
            if (i % 2 === 1) throw new Error('refused after numbering');
            return sequence;
          }),
        ),
      );
      const sequences = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])).sort((a, b) => a - b);
      expect(sequences).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    });
  });
}

describe('what a SQLite group commit cost', () => {
  it('hears each durable commit once: its units, the wait for a lock another process held, the time held, the wait for the sync', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-commit-observer-'));
    const heard: Array<Parameters<CommitObserver['committed']>[0]> = [];
    const store = await openStore({ dataDir }, { commits: { committed: (batch) => heard.push(batch) } });
    const other = new SQLite(sqliteFile(dataDir)); // another process's connection
    try {
      const ports = { store, clock: systemClock };
      const merchantId = (await addMerchant(ports, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
      heard.length = 0;

      other.exec('begin immediate');
      const writes = Array.from({ length: 3 }, (_, i) =>
        store.write((tx) => tx.savedItems.upsert(merchantId, { id: `i${i}`, name: `item ${i}`, taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' })));
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(heard).toEqual([]); // nothing committed while the lock is held elsewhere
      other.exec('commit');
      await Promise.all(writes);

      expect(heard).toHaveLength(1); // the three waited together and went in one commit
      const [batch] = heard;
      expect(batch!.units).toBe(3);
      expect(batch!.lockWaitMs).toBeGreaterThanOrEqual(100);
      expect(batch!.transactionMs).toBeGreaterThanOrEqual(0);
      expect(batch!.transactionMs).toBeLessThan(batch!.lockWaitMs);
      expect(batch!.durableMs).toBeGreaterThanOrEqual(0);

      const failing = store.write(async () => {
        throw new Error('refused');
      });
      await expect(failing).rejects.toThrow('refused');
      expect(heard).toHaveLength(1); // a lone unit that failed rolled back: no commit to hear
    } finally {
      other.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('is heard after the sync, counting only the units that committed; a failing observer keeps no unit waiting', async () => {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    let synced!: () => void;
    const sync = new Promise<void>((resolve) => (synced = resolve));
    const heard: Array<Parameters<CommitObserver['committed']>[0]> = [];
    const answered: string[] = [];
    const committer = new GroupCommitter(db, () => sync, {
      committed(batch) {
        heard.push(batch);
        answered.push('observer');
        throw new Error('a broken metric');
      },
    });
    try {
      const units = [
        committer.run((c) => sql`select 1`.execute(c)).then(() => answered.push('unit 1')),
        committer.run(async () => {
          throw new Error('refused');
        }).catch(() => answered.push('unit 2 refused')),
        committer.run((c) => sql`select 1`.execute(c)).then(() => answered.push('unit 3')),
      ];
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(heard).toEqual([]); // committed, not yet durable: nobody answered, nothing heard
      synced();
      await Promise.all(units);
      await new Promise((resolve) => setImmediate(resolve));
      expect(answered.sort()).toEqual(['observer', 'unit 1', 'unit 2 refused', 'unit 3']); // the throwing observer kept no unit waiting
      expect(heard).toHaveLength(1);
      expect(heard[0]!.units).toBe(2);
      expect(heard[0]!.durableMs).toBeGreaterThanOrEqual(50);
    } finally {
      await db.destroy();
    }
  });

  it('hears nothing of a batch whose sync failed, and its units get the sync error, not success', async () => {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    const heard: unknown[] = [];
    const diskError = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    const committer = new GroupCommitter(db, () => Promise.reject(diskError), { committed: (batch) => heard.push(batch) });
    try {
      const outcomes = await Promise.allSettled([committer.run((c) => sql`select 1`.execute(c)), committer.run((c) => sql`select 2`.execute(c))]);
      expect(outcomes).toEqual([{ status: 'rejected', reason: diskError }, { status: 'rejected', reason: diskError }]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(heard).toEqual([]);
    } finally {
      await db.destroy();
    }
  });
});

describe('holding the write lock', () => {
  it('is told once the lock is taken and once it is let go, before the sync; a batch that rolls back lets it go too', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-lock-hold-'));
    const file = sqliteFile(dataDir);
    const told: string[] = [];
    let synced!: () => void;
    const sync = new Promise<void>((resolve) => (synced = resolve));
    // No busy handler, as the store's writer: the committer waits for the lock in its own loop.
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(file, { timeout: 0 }) }) });
    const other = new SQLite(file);
    const committer = new GroupCommitter(db, () => sync, undefined, { taken: () => told.push('taken'), released: () => told.push('released') });
    try {
      await sql`create table t (n integer)`.execute(db);
      other.exec('begin immediate'); // another process holds the lock: not taken while it waits
      const first = committer.run(async (c) => {
        told.push('unit');
        await sql`insert into t values (1)`.execute(c);
      });
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(told).toEqual([]);
      other.exec('commit');
      for (const deadline = Date.now() + 5_000; told.length < 3 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(told).toEqual(['taken', 'unit', 'released']); // let go at the commit, while the sync still runs
      synced();
      await first;

      const refused = committer.run(async () => {
        told.push('refused unit');
        throw new Error('refused');
      });
      await expect(refused).rejects.toThrow('refused');
      expect(told.slice(3)).toEqual(['taken', 'refused unit', 'released']);

      // A commit that fails (a deferred foreign key) rolls back and lets the lock go once.
      await sql`create table parent (id integer primary key)`.execute(db);
      await sql`create table child (parent integer references parent (id) deferrable initially deferred)`.execute(db);
      await sql`pragma foreign_keys = on`.execute(db);
      const unfinished = committer.run(async (c) => {
        await sql`insert into child values (99)`.execute(c);
      });
      await expect(unfinished).rejects.toThrow(/FOREIGN KEY/);
      expect(told.slice(6)).toEqual(['taken', 'released']);
      expect((await sql<{ n: number }>`select count(*) as n from child`.execute(db)).rows[0]!.n).toBe(0);
    } finally {
      other.close();
      await db.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('commits and answers as usual when the hold throws (a priority change refused)', async () => {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    const refusing = () => {
      throw Object.assign(new Error('EACCES: permission denied, uv_os_setpriority'), { code: 'ERR_SYSTEM_ERROR' });
    };
    const committer = new GroupCommitter(db, () => Promise.resolve(), undefined, { taken: refusing, released: refusing });
    try {
      await sql`create table t (n integer)`.execute(db);
      await committer.run((c) => sql`insert into t values (1)`.execute(c));
      await committer.run((c) => sql`insert into t values (2)`.execute(c)); // the lock was let go: the next takes it
      expect((await sql<{ n: number }>`select count(*) as n from t`.execute(db)).rows[0]!.n).toBe(2);
    } finally {
      await db.destroy();
    }
  });
});
