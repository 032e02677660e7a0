// Who copies SQLite's write-ahead log back into the database file. In a cluster the HTTP processes
// leave it to the background process, so no answer to a client waits for a checkpoint; the log is
// still kept from growing without end.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, sqliteFile, type WalCheckpoints } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/app/ports.js';
import { repoRoot, tempDataDir } from '../support/server-process.js';

const PAGE = 4096;
/** Commits of about one page each by the other process: five times the restart threshold. */
const COMMITS = 10_000;

describe('write-ahead log checkpoints on SQLite', () => {
  let dir: ReturnType<typeof tempDataDir>;
  let stores: Store[] = [];
  const open = async (mode: WalCheckpoints) => {
    const store = await openSqliteStore(dir.dataDir, true, mode);
    stores.push(store);
    return store;
  };
  const walPages = () => statSync(`${sqliteFile(dir.dataDir)}-wal`).size / PAGE;
  /** `count` commits of about one page each: past SQLite's default checkpoint threshold (1000 pages). */
  const writePages = async (store: Store, count: number) => {
    for (let i = 0; i < count; i++) {
      await store.write((tx) => tx.outbox.enqueue({ merchantId: 'm', topic: 'test.page', subject: String(i), payload: 'x'.repeat(3000), at: '2026-12-02T10:00:00.000+08:00' }));
    }
  };

  beforeEach(() => {
    dir = tempDataDir('fapiao-wal-');
  });
  afterEach(async () => {
    for (const store of stores) await store.close();
    stores = [];
    dir.remove();
  });

  it('checkpoints on commit by default, so the log stays near 1000 pages', async () => {
    await writePages(await open('on-commit'), 1500);
    expect(walPages()).toBeLessThan(1100);
  });

  it('leaves the log to another process when told to: no commit waits for a checkpoint', async () => {
    await writePages(await open('elsewhere'), 1500);
    expect(walPages()).toBeGreaterThan(1500);
  });

  it('a periodic checkpointer lets the log start over while another process writes', async () => {
    const http = await open('elsewhere');
    await writePages(http, 1500);
    const grown = walPages();
    await open('periodic');
    await new Promise((resolve) => setTimeout(resolve, 600)); // a few of its rounds
    await writePages(http, 1500);
    // Checkpointed and no reader behind: the next commits write the log from its start again.
    expect(walPages()).toBeLessThan(grown * 1.1);
  });

  it('keeps the log bounded while another process keeps committing', async () => {
    await open('periodic');
    // An HTTP process's writer as the server sets it up: no busy handler, checkpoints left to others.
    const writer = spawn(process.execPath, ['-e', /* js */ `
      const db = new (require('better-sqlite3'))(process.argv[1]);
      db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL'); db.pragma('wal_autocheckpoint = 0');
      db.exec('create table if not exists pages (body text)');
      const insert = db.prepare('insert into pages (body) values (?)');
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let commits = 0; commits < ${COMMITS}; ) {
        try { insert.run('x'.repeat(3000)); commits++; } catch (e) { if (e.code !== 'SQLITE_BUSY') throw e; }
        Atomics.wait(pause, 0, 0, 0.2); // the next batch gathering: a server's writer is never a tight loop
      }
    `, sqliteFile(dir.dataDir)], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
    let largest = 0;
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));
    while (running) {
      try {
        largest = Math.max(largest, walPages());
      } catch {
        // not there yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await exited).toBe(0);
    // Without the restart the log only grows: to about COMMITS pages.
    expect(largest).toBeLessThan(COMMITS / 2);
  });
});
