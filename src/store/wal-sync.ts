// Durability for the embedded database without holding its write lock through an fsync.
//
// The writer runs with synchronous=NORMAL: a commit writes its WAL frames and releases SQLite's
// lock at once, and nothing is answered until an fsync of the WAL file has returned. fsync flushes
// the whole file, so it makes every commit written before it started durable, and it runs on
// libuv's thread pool, so the process goes on reading requests and the next batch (this process's
// or another's) takes the lock while the disk works. A commit that arrives while a sync is running
// waits for the next one, which covers everything committed up to its start: one fsync serves every
// commit that came in meanwhile.
//
// What this changes from synchronous=FULL: another connection can read a commit a moment before it
// is durable. Nothing leaves the machine on such a read: every upload, delivery and print is first
// claimed in a write transaction, whose own sync covers everything written before it. A crash of
// the process loses nothing either way (written frames are in the operating system's cache); a
// power cut may lose commits nobody was answered for, and never one without those before it (the
// WAL is replayed up to its first missing frame).
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Runs `sync` so that each `flush()` resolves after a sync that started after the call.
 *
 * A failed sync fails every later flush too. The kernel may have dropped the pages it could not
 * write, so a later fsync that succeeds would vouch for frames that are not on disk (PostgreSQL stops
 * for the same reason). The store then answers no write until it is restarted, and /readyz says so.
 */
export class CoalescedSync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;

  constructor(private readonly sync: () => Promise<void>) {}

  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.queued) return this.queued; // not started yet: it will cover this call too
    if (!this.running) return this.start();
    const next = () => {
      this.queued = undefined;
      return this.start();
    };
    this.queued = this.running.then(next, next);
    return this.queued;
  }

  /** Resolves when no sync is running or waiting. */
  async idle(): Promise<void> {
    while (this.running ?? this.queued) await (this.queued ?? this.running)!.catch(() => undefined);
  }

  private start(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    const running = this.sync().catch((error: unknown) => {
      this.failure ??= { error };
      throw error;
    }).finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }
}

/** fsync of a SQLite database's WAL file, coalesced. */
export function walSync(databaseFile: string): { flush(): Promise<void>; close(): Promise<void> } {
  // The WAL file lives as long as a connection to the database is open, and the store keeps its
  // writer open; opened at the first flush, since it exists from the first commit on. Failing to
  // open it (too many open files) wrote nothing off, so unlike a failed sync it fails only that
  // flush: the next one tries to open it again.
  let opening: Promise<FileHandle> | undefined;
  const handle = () =>
    (opening ??= open(`${databaseFile}-wal`, 'r').catch((error: unknown) => {
      opening = undefined;
      throw error;
    }));
  const syncs = new CoalescedSync(async () => (await handle()).sync());
  return {
    async flush() {
      await handle();
      return syncs.flush();
    },
    async close() {
      await syncs.idle();
      const opened = await opening?.catch(() => undefined);
      opening = undefined;
      await opened?.close();
    },
  };
}
