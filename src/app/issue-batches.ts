// Group issuing. Each process keeps a queue per merchant: the first request starts a batch, those
// arriving while it is being written wait and form the next one, up to ISSUE_BATCH_MAX. Under light
// load a batch is one request and nothing waits; under heavy load the merchant's lock, numbering,
// chain and commit are shared by many invoices, which is what lets one merchant issue faster than
// one transaction at a time (on PostgreSQL every statement under the lock is a round trip).
// Nobody is answered before the commit that holds their invoice.
//
// The writer takes its batch from the queue once it holds the merchant's lock, not before it asks
// for it: requests that arrived while another process or instance held the lock join the batch
// instead of waiting for a whole turn of the lock more.

/** At most this many invoices in one transaction, so one batch never holds the lock for long. */
export const ISSUE_BATCH_MAX = 100;

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Waiting<R, T> {
  request: R;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export class MerchantQueues<R extends { caller: { merchantId: string } }, T> {
  private readonly waiting = new Map<string, Array<Waiting<R, T>>>();

  /**
   * `writeBatch` calls `take` once it is ready for its requests (an issue batch: once it holds the
   * merchant's lock), before its promise settles, and answers one outcome per request taken, in
   * order. A transaction it runs again (PostgreSQL retries a conflict) takes the same requests.
   * (key-lookups.ts queues its key reads the same way.)
   */
  constructor(private readonly writeBatch: (merchantId: string, take: () => readonly R[]) => Promise<Array<Outcome<T>>>) {}

  submit(request: R): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const merchantId = request.caller.merchantId;
      const queue = this.waiting.get(merchantId);
      if (queue) {
        queue.push({ request, resolve, reject });
        return;
      }
      this.waiting.set(merchantId, [{ request, resolve, reject }]);
      // Requests read from the sockets in the same turn of the event loop join the first batch.
      setImmediate(() => void this.drain(merchantId));
    });
  }

  private async drain(merchantId: string): Promise<void> {
    const queue = this.waiting.get(merchantId)!;
    while (queue.length > 0) {
      let batch: Array<Waiting<R, T>> | undefined;
      const take = () => (batch ??= queue.splice(0, ISSUE_BATCH_MAX)).map((w) => w.request);
      try {
        const outcomes = await this.writeBatch(merchantId, take);
        if (!batch) throw new Error('an issue batch was written without taking its requests');
        batch.forEach((waiting, i) => {
          const outcome = outcomes[i]!;
          if (outcome.ok) waiting.resolve(outcome.value);
          else waiting.reject(outcome.error);
        });
      } catch (error) {
        // Nothing of the batch was stored. A writer that failed before it held the lock took
        // nothing: the requests it would have taken get its error.
        for (const waiting of (batch ??= queue.splice(0, ISSUE_BATCH_MAX))) waiting.reject(error);
      }
    }
    this.waiting.delete(merchantId);
  }
}
