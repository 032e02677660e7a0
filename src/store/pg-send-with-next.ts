// Statements whose answer nobody waits for are not sent on their own on PostgreSQL: they wait on
// their connection and go out together with the next statement, back to back. The pool's clients
// run node-postgres in pipeline mode, which writes each statement to the socket when it is made, so
// the server runs the second as soon as the first is done: two statements, one round trip, and one
// wait for the instance's event loop instead of two.
//
// What waits: `begin` (nothing to answer), and the statements registered with `sendWithNext`: a
// transaction's final write (the issue batch's one statement, answered by nothing but success),
// which then goes out with the commit, and a lock whose row is not needed (`merchants.hold`), which
// goes out with the statement that needs the lock. That matters under a merchant's lock: the lock
// is held from the moment it is granted until the commit, and every round trip and every answer the
// instance must handle on the way is time the other instances wait (bench:issue with 3 instances
// sampled the lock's holder waiting for its instance most of the time it held the lock).
//
// Nothing changes in what a transaction does or in which order: a held statement is always sent
// before any later one, and a failure of it is the failure of the statement it went with (each
// statement ends with its own Sync, so the server runs the next one anyway: inside a transaction
// it fails as aborted, and a `commit` after a failed statement only rolls back, so the failure is
// never taken for success). A `rollback` drops what is held, and costs nothing at all if even the
// begin is still held. test/integration/pg-pipelining.test.ts reads what goes on the wire.
import type pg from 'pg';

type Send = (text: string, values: unknown[]) => Promise<pg.QueryResult>;

const sentWithNext = new Set<string>(['begin']);

/** Registers a statement to be sent together with the one after it (its answer is not awaited). */
export function sendWithNext(sql: string): void {
  sentWithNext.add(sql);
}

/** What a held statement answers at once: no rows, no count (a new object each time: callers own their results). */
const noAnswer = (): Promise<pg.QueryResult> => Promise.resolve({ command: '', rowCount: null, rows: [], oid: 0, fields: [] });

/** One pooled connection's statements while one holder has it checked out. */
export class SendWithNext {
  private held: Array<{ text: string; values: unknown[] }> = [];

  constructor(private readonly send: Send) {}

  query(text: string, values: unknown[]): Promise<pg.QueryResult> {
    if (sentWithNext.has(text)) {
      this.held.push({ text, values });
      return noAnswer();
    }
    if (text === 'rollback' && this.held.length > 0) {
      const begun = !this.held.some((q) => q.text === 'begin');
      this.held = [];
      return begun ? this.send(text, values) : noAnswer();
    }
    if (this.held.length === 0) return this.send(text, values);
    const statements = [...this.held, { text, values }];
    this.held = [];
    // Every statement is handed to the driver (and written) before the first answer can arrive.
    const answers = statements.map((q) => this.send(q.text, q.values));
    return settleInOrder(answers);
  }

  /** The holder gives the connection back: anything still held was never meant to run alone. */
  drop(): void {
    this.held = [];
  }
}

/** The last answer, or the first failure in the order the statements were sent. */
async function settleInOrder(answers: Array<Promise<pg.QueryResult>>): Promise<pg.QueryResult> {
  const settled = await Promise.allSettled(answers);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return (settled.at(-1) as PromiseFulfilledResult<pg.QueryResult>).value;
}
