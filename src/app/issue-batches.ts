// Group issuing. Each process keeps a queue per merchant: the first request starts a batch, those
// arriving while it is being written wait and form the next one, up to ISSUE_BATCH_MAX. Under light
// load a batch is one request and nothing waits; under heavy load the merchant's lock, numbering,
// chain and commit are shared by many invoices, which is what lets one merchant issue faster than
// one transaction at a time (on PostgreSQL every statement under the lock is a round trip).
// Nobody is answered before the commit that holds their invoice.

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

  constructor(private readonly writeBatch: (merchantId: string, requests: readonly R[]) => Promise<Array<Outcome<T>>>) {}

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
      const batch = queue.splice(0, ISSUE_BATCH_MAX);
      try {
        const outcomes = await this.writeBatch(merchantId, batch.map((w) => w.request));
        batch.forEach((waiting, i) => {
          const outcome = outcomes[i]!;
          if (outcome.ok) waiting.resolve(outcome.value);
          else waiting.reject(outcome.error);
        });
      } catch (error) {
        for (const waiting of batch) waiting.reject(error); // nothing of the batch was stored
      }
    }
    this.waiting.delete(merchantId);
  }
}
