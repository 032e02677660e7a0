// Group commit for the single-writer embedded database. Every write that arrives while a
// transaction is running waits, and the next transaction runs all of them together, each in its
// own savepoint: one fsync makes a whole batch durable, and one failing unit rolls back alone.
// Nobody is answered before the commit that holds their work has returned.
import { type Kysely, type Transaction, sql } from 'kysely';
import type { Database } from './schema.js';

interface Unit {
  work: (trx: Transaction<Database>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommitter {
  private queue: Unit[] = [];
  private draining = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 200,
  ) {}

  run<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
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
        const batch = this.queue.splice(0, this.maxBatch);
        await this.commitBatch(batch);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.draining = false;
    }
  }

  private async commitBatch(batch: Unit[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.db.transaction().execute(async (trx) => {
        if (batch.length === 1) return [await attempt(() => batch[0]!.work(trx), true)];
        const results: Outcome[] = [];
        for (const unit of batch) {
          await sql`savepoint unit`.execute(trx);
          const outcome = await attempt(() => unit.work(trx), false);
          if (!outcome.ok) await sql`rollback to unit`.execute(trx);
          await sql`release unit`.execute(trx);
          results.push(outcome);
        }
        return results;
      });
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing in the batch happened.
      for (const unit of batch) unit.reject(error);
      return;
    }
    batch.forEach((unit, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) unit.resolve(outcome.value);
      else unit.reject(outcome.error);
    });
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
