// Idempotency-Keys read before the merchant's lock (PostgreSQL): the keys asked for in one turn of
// the event loop are read together, one read per merchant at a time, and a read that fails leaves
// the keys to be read under the lock instead of failing the requests.
import { describe, expect, it } from 'vitest';
import { KeyLookups } from '../../src/app/key-lookups.js';
import type { IdempotencyRecord, Store } from '../../src/app/ports.js';

const AT = '2026-12-05T10:00:00.000+08:00';
const record = (merchantId: string, key: string): IdempotencyRecord => ({ merchantId, key, requestHash: `h-${key}`, invoiceNumber: '26350000000000000001', createdAt: AT });

/** A store whose key reads the test answers one by one; each read is recorded with what it asked. */
function storeWithReads() {
  const reads: Array<{ merchantId: string; keys: readonly string[]; answer: (used: string[]) => void; fail: () => void }> = [];
  const find = (merchantId: string, keys: readonly string[]) => new Promise<Map<string, IdempotencyRecord>>((resolve, reject) => {
    reads.push({ merchantId, keys, answer: (used) => resolve(new Map(used.map((key) => [key, record(merchantId, key)]))), fail: () => reject(new Error('connection terminated')) });
  });
  const store = { read: { idempotency: { find } } } as unknown as Store;
  return { reads, lookups: new KeyLookups(store) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('reading Idempotency-Keys before the lock', () => {
  it('reads the keys asked for in one turn together, per merchant, each key once', async () => {
    const { reads, lookups } = storeWithReads();
    const asked = [lookups.find('m1', 'a'), lookups.find('m1', 'b'), lookups.find('m1', 'a'), lookups.find('m2', 'a')];
    await turn();

    expect(reads.map((r) => [r.merchantId, r.keys])).toEqual([['m1', ['a', 'b']], ['m2', ['a']]]);
    reads[0]!.answer(['b']);
    reads[1]!.answer(['a']);
    expect(await Promise.all(asked)).toEqual([null, record('m1', 'b'), null, record('m2', 'a')]);
  });

  it('has one read of a merchant on its way at a time: keys asked for meanwhile go together with the next', async () => {
    const { reads, lookups } = storeWithReads();
    const first = lookups.find('m1', 'a');
    await turn();
    const later = [lookups.find('m1', 'b'), lookups.find('m1', 'c')];
    await turn();
    expect(reads).toHaveLength(1);

    reads[0]!.answer([]);
    expect(await first).toBeNull();
    await turn();
    expect(reads.map((r) => r.keys)).toEqual([['a'], ['b', 'c']]);
    reads[1]!.answer(['c']);
    expect(await Promise.all(later)).toEqual([null, record('m1', 'c')]);

    const next = lookups.find('m1', 'd'); // nothing on its way any more: a read of its own
    await turn();
    expect(reads.map((r) => r.keys)).toEqual([['a'], ['b', 'c'], ['d']]);
    reads[2]!.answer([]);
    expect(await next).toBeNull();
  });

  it('leaves the keys of a read that failed unread (undefined), for the batch to read under the lock', async () => {
    const { reads, lookups } = storeWithReads();
    const asked = lookups.find('m1', 'a');
    await turn();
    reads[0]!.fail();
    expect(await asked).toBeUndefined();
  });
});
