// The embedded store's fsync: a flush is answered by a sync that started after it was asked for, and
// every flush asked for while one sync runs shares the next. After a failed sync nothing is vouched for again.
import { describe, expect, it } from 'vitest';
import { CoalescedSync } from '../../src/store/wal-sync.js';

/** A sync the test finishes by hand; `started` counts the syncs begun. */
function manualSync() {
  const pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const state = { started: 0 };
  const sync = () => new Promise<void>((resolve, reject) => {
    state.started += 1;
    pending.push({ resolve, reject });
  });
  const finish = async (error?: Error) => {
    const next = pending.shift()!;
    if (error) next.reject(error);
    else next.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { sync, state, finish };
}

const settled = (promise: Promise<unknown>) => {
  const seen = { done: false, error: undefined as unknown };
  promise.then(() => (seen.done = true), (error: unknown) => { seen.done = true; seen.error = error; });
  return seen;
};

describe('coalesced sync', () => {
  it('starts a sync at once when none is running', async () => {
    const { sync, state, finish } = manualSync();
    const syncs = new CoalescedSync(sync);
    const first = settled(syncs.flush());
    expect(state.started).toBe(1);
    await finish();
    expect(first.done).toBe(true);
  });

  it('answers a flush asked for during a sync only after the next sync, shared by all who asked meanwhile', async () => {
    const { sync, state, finish } = manualSync();
    const syncs = new CoalescedSync(sync);
    const first = settled(syncs.flush());
    const second = settled(syncs.flush());
    const third = settled(syncs.flush());
    expect(state.started).toBe(1);

    await finish(); // the sync that began before the second and third were asked for
    expect(first.done).toBe(true);
    expect([second.done, third.done]).toEqual([false, false]);
    expect(state.started).toBe(2);

    await finish();
    expect([second.done, third.done]).toEqual([true, true]);
    expect(state.started).toBe(2);
  });

  it('fails the flushes a failed sync was to cover, those waiting for the next, and every later one, without syncing again', async () => {
    const { sync, state, finish } = manualSync();
    const syncs = new CoalescedSync(sync);
    const failing = settled(syncs.flush());
    const waiting = settled(syncs.flush());
    await finish(Object.assign(new Error('I/O error'), { code: 'EIO' }));
    expect(failing.error).toMatchObject({ code: 'EIO' });
    expect(waiting.error).toMatchObject({ code: 'EIO' });

    await expect(syncs.flush()).rejects.toMatchObject({ code: 'EIO' });
    expect(state.started).toBe(1);
  });

  it('is idle only when no sync is running or waiting', async () => {
    const { sync, finish } = manualSync();
    const syncs = new CoalescedSync(sync);
    void syncs.flush();
    void syncs.flush();
    const idle = settled(syncs.idle());
    await finish();
    expect(idle.done).toBe(false);
    await finish();
    expect(idle.done).toBe(true);
  });
});
