// Idempotency-Keys read before the merchant's lock (`Store.readsKeysBeforeLock`, PostgreSQL), outside
// any transaction, while the batch they will join is still to start or waits for the lock. They go
// through a queue per merchant as issue requests do (issue-batches.ts): the keys asked for in one
// turn of the event loop are read with one statement, one read per merchant at a time, and keys
// asked for meanwhile go with the next. A key read as used is final (a key's record never changes).
// A key read as unused may still be stored by another request before the batch writes it: the
// unique key then refuses the batch's write and the store runs the batch again, which reads its
// keys under the lock.
import { MerchantQueues } from './issue-batches.js';
import type { IdempotencyRecord, Store } from './ports.js';

/** A key's record; null when the key was never used; undefined when it could not be read. */
export type KeyRead = IdempotencyRecord | null | undefined;

interface KeyAsked {
  caller: { merchantId: string };
  key: string;
}

export class KeyLookups {
  private readonly queues: MerchantQueues<KeyAsked, KeyRead>;

  constructor(store: Store) {
    this.queues = new MerchantQueues(async (merchantId, take) => {
      const asked = take();
      let found: Map<string, IdempotencyRecord> | undefined;
      try {
        found = await store.read.idempotency.find(merchantId, [...new Set(asked.map((a) => a.key))]);
      } catch {
        // The database may be away; the batch's own write then fails the same way, or reads the keys.
      }
      return asked.map((a) => ({ ok: true, value: found && (found.get(a.key) ?? null) }));
    });
  }

  /** Never fails: a key that could not be read is undefined, and its batch reads it under the lock. */
  find(merchantId: string, key: string): Promise<KeyRead> {
    return this.queues.submit({ caller: { merchantId }, key });
  }
}
