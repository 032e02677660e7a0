// Idempotency-Keys read before the merchant's lock (`Store.readsKeysBeforeLock`, PostgreSQL): the
// keys of the requests that arrive in one turn of the event loop are read with one statement per
// merchant, outside any transaction, while the batch they will join is still to start or waits for
// the lock. A key read as used is final (a key's record never changes). A key read as unused may
// still be stored by another request before the batch writes it: the unique key then refuses the
// batch's write and the store runs the batch again, which reads its keys under the lock.
import type { IdempotencyRecord, Store } from './ports.js';

/** A key's record; null when the key was never used; undefined when it could not be read. */
export type KeyRead = IdempotencyRecord | null | undefined;

interface Waiting {
  key: string;
  resolve: (read: KeyRead) => void;
}

export class KeyLookups {
  /** Per merchant with a read to come or on its way: the keys waiting for the next read. */
  private readonly waiting = new Map<string, Waiting[]>();

  constructor(private readonly store: Store) {}

  /** Never fails: a key that could not be read is undefined, and its batch reads it under the lock. */
  find(merchantId: string, key: string): Promise<KeyRead> {
    return new Promise((resolve) => {
      const queue = this.waiting.get(merchantId);
      if (queue) {
        queue.push({ key, resolve });
        return;
      }
      this.waiting.set(merchantId, [{ key, resolve }]);
      // Keys of requests read from the sockets in the same turn of the event loop are read together.
      setImmediate(() => void this.read(merchantId));
    });
  }

  /** One read at a time per merchant: keys asked for while one is on its way go with the next. */
  private async read(merchantId: string): Promise<void> {
    const queue = this.waiting.get(merchantId)!;
    while (queue.length > 0) {
      const asked = queue.splice(0);
      let found: Map<string, IdempotencyRecord> | undefined;
      try {
        found = await this.store.read.idempotency.find(merchantId, [...new Set(asked.map((w) => w.key))]);
      } catch {
        // The database may be away; the batch's own write then fails the same way, or reads the keys.
      }
      for (const w of asked) w.resolve(found && (found.get(w.key) ?? null));
    }
    this.waiting.delete(merchantId);
  }
}
