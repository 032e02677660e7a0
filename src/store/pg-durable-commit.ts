// Every write transaction on PostgreSQL lets go of its row locks at the commit without waiting
// for the disk, then waits for the disk before it returns: the commit is asynchronous
// (`synchronous_commit = off`, set for the transaction alone) and is followed, in the same
// exchange, by a one-record transaction committed the usual way (the session's own setting, so
// a synchronous standby is waited for too). WAL is written and flushed in order, so once that
// second commit is on disk (and on the standby) the first one is too. Nobody is answered before.
//
// Why: an issue batch holds its merchant's row lock from the lock statement to the commit, and
// with a synchronous commit that includes the WAL flush. Every other batch of the merchant, from
// every instance, waits behind it, so flushes happen one after another, and one slow flush (20 to
// 28 ms were seen during bench:issue, where a flush takes well under a millisecond) holds the whole
// merchant up. Released at the commit, the next batch runs while this one's flush is under way, and
// the batches waiting for the disk share flushes. SQLite's group commit works the same way
// (wal-sync.ts).
//
// Another session may read a batch before it is on disk (a query, or the next batch). If the
// server crashed then, the WAL after the last flush is lost as a whole: that batch and everything
// that built on it, none of it answered.
import { CompiledQuery, PostgresDriver, type DatabaseConnection, type TransactionSettings } from 'kysely';
import { sendWithNext } from './pg-send-with-next.js';

/** Opens a write transaction whose commit does not wait for the disk. */
export const BEGIN = 'begin; set local synchronous_commit = off';
/** Commits, then waits for the disk: the logical-decoding message is the smallest transaction that writes WAL, and any role may send it. */
export const COMMIT = `commit; select pg_logical_emit_message(true, 'fapiao', 'durable')`;

sendWithNext(BEGIN); // nothing to answer: it goes out with the transaction's first statement

export class DurableCommitDriver extends PostgresDriver {
  override async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    if (settings.isolationLevel || settings.accessMode) return super.beginTransaction(connection, settings);
    await connection.executeQuery(CompiledQuery.raw(BEGIN));
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(COMMIT));
  }
}
