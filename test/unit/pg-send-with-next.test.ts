// On PostgreSQL a transaction's begin, and a transaction's final write registered for it, wait on their
// connection and go out with the next statement: all of them handed to the driver at once, before
// any answer, in their order; the first failure among them is the failure of the call.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SendWithNext, sendWithNext } from '../../src/store/pg-send-with-next.js';

const FINAL_WRITE = 'insert into t select * from unnest($1::text[]) -- a final write';
sendWithNext(FINAL_WRITE);

interface Sent {
  text: string;
  values: unknown[];
  answer: (result?: Partial<pg.QueryResult>) => void;
  fail: (error: Error) => void;
}

/** A driver that records what it was handed and answers only when the test says. */
function driver() {
  const sent: Sent[] = [];
  const statements = new SendWithNext((text, values) => new Promise((resolve, reject) => {
    sent.push({ text, values, answer: (result) => resolve({ command: text.toUpperCase(), rowCount: 1, rows: [], ...result } as pg.QueryResult), fail: reject });
  }));
  return { sent, statements, texts: () => sent.map((s) => s.text) };
}

/** A transaction begun, its first statement (`select 1`) sent with the begin and both answered. */
async function begunWithARead() {
  const held = driver();
  await held.statements.query('begin', []);
  const read = held.statements.query('select 1', []);
  held.sent.forEach((s) => s.answer());
  await read;
  return held;
}

describe('statements sent with the next one (PostgreSQL)', () => {
  it('holds the begin and sends it with the first statement, both handed over before either is answered', async () => {
    const { sent, statements, texts } = driver();
    expect((await statements.query('begin', [])).rows).toEqual([]);
    expect(texts()).toEqual([]);
    const lock = statements.query('select * from merchants where id = $1 for update', ['m1']);
    expect(texts()).toEqual(['begin', 'select * from merchants where id = $1 for update']);
    expect(sent[1]!.values).toEqual(['m1']);
    sent[0]!.answer();
    sent[1]!.answer({ rows: [{ id: 'm1' }] });
    expect((await lock).rows).toEqual([{ id: 'm1' }]);
  });

  it('sends a registered final write with the commit, in that order, and answers with the commit', async () => {
    const { sent, statements, texts } = await begunWithARead();
    await statements.query(FINAL_WRITE, [['a', 'b']]);
    expect(texts()).toEqual(['begin', 'select 1']);
    const commit = statements.query('commit', []);
    expect(texts()).toEqual(['begin', 'select 1', FINAL_WRITE, 'commit']);
    expect(sent[2]!.values).toEqual([['a', 'b']]);
    sent[2]!.answer();
    sent[3]!.answer();
    expect((await commit).command).toBe('COMMIT');
  });

  it('fails the commit with the final write\'s failure, although the commit itself was answered (it rolled back)', async () => {
    const { sent, statements } = driver();
    await statements.query(FINAL_WRITE, [[]]);
    const commit = statements.query('commit', []);
    sent[0]!.fail(Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }));
    sent[1]!.answer({ command: 'ROLLBACK' });
    await expect(commit).rejects.toMatchObject({ code: '23505' });
  });

  it('gives the first failure in the order sent, not the first to arrive', async () => {
    const { sent, statements } = driver();
    await statements.query('begin', []);
    const call = statements.query('select 1', []);
    sent[1]!.fail(new Error('current transaction is aborted'));
    sent[0]!.fail(new Error('the begin failed'));
    await expect(call).rejects.toThrow('the begin failed');
  });

  it('rolls back without sending anything when even the begin is still held', async () => {
    const { statements, texts } = driver();
    await statements.query('begin', []);
    expect((await statements.query('rollback', [])).rows).toEqual([]);
    expect(texts()).toEqual([]);
    void statements.query('select 2', []);
    expect(texts()).toEqual(['select 2']); // the dropped begin does not come back
  });

  it('drops a held final write on rollback and sends only the rollback', async () => {
    const { sent, statements, texts } = await begunWithARead();
    await statements.query(FINAL_WRITE, [['a']]);
    const rollback = statements.query('rollback', []);
    expect(texts()).toEqual(['begin', 'select 1', 'rollback']);
    sent[2]!.answer();
    await rollback;
  });

  it('forgets what is held when the connection is given back', async () => {
    const { statements, texts } = driver();
    await statements.query('begin', []);
    statements.drop();
    void statements.query('select 3', []);
    expect(texts()).toEqual(['select 3']);
  });

  it('sends a statement nothing is held for on its own, at once', async () => {
    const { sent, statements, texts } = driver();
    const call = statements.query('select 4', [1]);
    expect(texts()).toEqual(['select 4']);
    sent[0]!.answer({ rows: [{ n: 4 }] });
    expect((await call).rows).toEqual([{ n: 4 }]);
  });
});
