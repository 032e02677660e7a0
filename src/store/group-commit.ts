// Group commit for the embedded database. Every write that arrives while a transaction is running
// waits, and the next transaction runs all of them together, each in its own savepoint: one fsync
// makes a whole batch durable, and one failing unit rolls back alone. Nobody is answered before
// the commit that holds their work has returned.
//
// Several server processes may share the file (one per core). Each transaction starts with
// BEGIN IMMEDIATE, which takes SQLite's write lock before anything is read, so numbering, chains
// and idempotency checks always see the other processes' latest commits. While another process
// holds the lock we wait without blocking the event loop (SQLite's own busy handler would sleep
// inside it and stop this process answering anyone).
//
// The commit releases the lock before it is durable (wal-sync.ts): a batch's units are settled
// once `durable` has returned, and meanwhile the next batch already runs.
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';
import { Fault, faults } from '../domain/faults.js';

interface Unit {
  work: (db: Kysely<Database>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Hears what each batch that committed and became durable cost, in milliseconds, once its units are
 * answered:
 *   - lockWaitMs: from asking for SQLite's write lock until holding it. Mostly another process's
 *     batch holding it; also this process's own event-loop delay between tries (1–2 ms timers).
 *   - transactionMs: every unit's statements and the commit, about the time the lock is held.
 *   - durableMs: from the commit until this process handled the end of the sync that covers it.
 * `units` counts the units that committed (a unit rolled back to its savepoint is not one). Batches
 * that never committed (the lock never came, 5001; a failed commit or sync) are not heard.
 */
export interface CommitObserver {
  committed(batch: { units: number; lockWaitMs: number; transactionMs: number; durableMs: number }): void;
}

/**
 * Told when this process has taken SQLite's write lock and when it has let it go (after the commit
 * or the rollback, before the sync). Every other process's writes wait meanwhile, so a niced
 * process holds it at normal priority (src/ops/lock-priority.ts).
 */
export interface LockHold {
  taken(): void;
  released(): void;
}

const LOCK_WAIT_LIMIT_MS = 10_000;
/** Units in one transaction at most. */
const MAX_BATCH = 200;

export class GroupCommitter {
  private queue: Unit[] = [];
  private draining = false;

  constructor(
    private readonly db: Kysely<Database>,
    /** Resolves once every commit made before the call is on disk. */
    private readonly durable: () => Promise<void>,
    private readonly observer?: CommitObserver,
    private readonly hold?: LockHold,
  ) {}

  run<T>(work: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  // better-sqlite3 answers synchronously, so a batch started at once would run and commit inside
  // the first caller's own callback, before any other request could even be read. Starting each
  // batch from setImmediate lets every request already waiting on a socket join it first.
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.commitBatch(this.queue.splice(0, MAX_BATCH));
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.draining = false;
    }
  }

  private async commitBatch(batch: Unit[]): Promise<void> {
    let outcomes: Outcome[];
    const asked = performance.now();
    let locked = asked;
    try {
      outcomes = await this.db.connection().execute(async (connection) => {
        await beginImmediate(connection);
        locked = performance.now();
        tell(() => this.hold?.taken());
        try {
          const results = batch.length === 1 ? [await attempt(() => batch[0]!.work(connection), true)] : await runEach(connection, batch);
          await sql`commit`.execute(connection);
          return results;
        } catch (error) {
          await sql`rollback`.execute(connection).catch(() => undefined); // already rolled back by SQLite on some errors
          throw error;
        } finally {
          tell(() => this.hold?.released());
        }
      });
    } catch (error) {
      // Nothing in the batch happened (the lock never came, the commit failed, the disk is full).
      for (const unit of batch) unit.reject(error);
      return;
    }
    const committed = performance.now();
    // Not awaited: the next batch may take the lock while this one's sync runs. A failed sync
    // answers the batch with the error (it may or may not be on disk; a retry with the same
    // Idempotency-Key finds out), never with success.
    this.durable().then(
      () => {
        const durable = performance.now();
        batch.forEach((unit, i) => {
          const outcome = outcomes[i]!;
          if (outcome.ok) unit.resolve(outcome.value);
          else unit.reject(outcome.error);
        });
        try {
          this.observer?.committed({ units: outcomes.filter((o) => o.ok).length, lockWaitMs: locked - asked, transactionMs: committed - locked, durableMs: durable - committed });
        } catch {
          // a metric never fails a write: its units are answered already
        }
      },
      (error: unknown) => batch.forEach((unit) => unit.reject(error)),
    );
  }
}

/** A hold is told, never asked: a failing one neither keeps the lock nor fails a write. */
function tell(hook: () => void): void {
  try {
    hook();
  } catch {
    // the priority stays as it was (src/ops/lock-priority.ts)
  }
}

async function runEach(connection: Kysely<Database>, batch: Unit[]): Promise<Outcome[]> {
  const results: Outcome[] = [];
  for (const unit of batch) {
    await sql`savepoint unit`.execute(connection);
    const outcome = await attempt(() => unit.work(connection), false);
    if (!outcome.ok) await sql`rollback to unit`.execute(connection);
    await sql`release unit`.execute(connection);
    results.push(outcome);
  }
  return results;
}

async function beginImmediate(connection: Kysely<Database>): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_LIMIT_MS;
  for (let pause = 1; ; pause = Math.min(pause + 1, 2)) {
    try {
      await sql`begin immediate`.execute(connection);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      if (Date.now() > deadline) throw new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** Runs one unit; a lone unit's error aborts the whole transaction so it rolls back cleanly. */
async function attempt(work: () => Promise<unknown>, rethrow: boolean): Promise<Outcome> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (rethrow) throw error;
    return { ok: false, error };
  }
}
