// What an issue batch reads under its merchant's lock (on PostgreSQL in one statement, sent with the
// lock's): the merchant, the usage counters its limits may need, the year's open blocks oldest first
// and the chain heads, all as the last batch before the lock left them, whichever way the lock was
// taken. (The batch's Idempotency-Keys are read apart: before the lock on PostgreSQL, see
// issue-batches.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMerchant } from '../../src/app/merchants.js';
import type { IssueContextQuery } from '../../src/app/ports.js';
import { GENESIS_HASH } from '../../src/domain/invoice.js';
import { systemClock } from '../../src/domain/time.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { validUscc } from '../support/http.js';

const AT = '2026-12-03T10:00:00.000+08:00';
const block = (merchantId: string, blockId: string, year: number, first: number, last: number, next = first) =>
  ({ merchantId, blockId, year, first, last, next, source: 'granted' as const, grantedAt: AT });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const kind of storesUnderTest) {
  describe(`an issue batch's context on ${kind.name}`, () => {
    let opened: OpenedStore;
    let merchantId: string;
    let query: IssueContextQuery;

    beforeEach(async () => {
      opened = await kind.open();
      merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
      query = { merchantId, periods: ['D2026-12-03', 'M2026-12'], year: 2026, scopes: [`invoices:${merchantId}`, `audit:${merchantId}`] };
    });
    afterEach(() => opened.cleanup());

    it('holds only what was asked for: the merchant, counters (zero when never counted), open blocks oldest first, heads in order', async () => {
      const other = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '另一商户', taxId: validUscc(4242), regionCode: '35' })).id;
      await opened.store.write(async (tx) => {
        await tx.merchants.setLimits(merchantId, { dailyInvoiceLimit: 500, operatorCreditFen: 9_007_199_254_740_993n }); // past a double's exact integers
        await tx.usage.add(merchantId, [{ period: 'M2026-12', invoiceCount: 2, preTaxFen: 90_071_992_547_409_931n }], AT); // past a double's exact integers
        await tx.usage.add(merchantId, [{ period: 'Bnormal', invoiceCount: 1, preTaxFen: 90_071_992_547_409_931n }], AT);
        await tx.usage.add(merchantId, [{ period: 'D2026-12-02', invoiceCount: 9, preTaxFen: 1n }], AT);
        await tx.numberBlocks.insert(block(merchantId, 'later', 2026, 1001, 2000));
        await tx.numberBlocks.insert(block(merchantId, 'first', 2026, 1, 1000, 3));
        await tx.numberBlocks.insert(block(merchantId, 'used-up', 2026, 5001, 5002, 5003));
        await tx.numberBlocks.insert(block(merchantId, 'last-year', 2025, 1, 1000));
        await tx.numberBlocks.insert(block(other, 'theirs', 2026, 1, 1000));
        await tx.chain.advance([{ scope: `audit:${merchantId}`, hash: 'a'.repeat(64), index: 7 }]);
      });

      const context = await opened.store.write((tx) => tx.issues.context(query));
      expect(context.merchant).toEqual(await opened.store.read.merchants.get(merchantId));
      expect(context.merchant).toMatchObject({ id: merchantId, name: '销售方', dailyInvoiceLimit: 500, operatorCreditFen: 9_007_199_254_740_993n, grantedCreditFen: null, offlineSince: null });
      expect(context.usage).toEqual(new Map([
        ['D2026-12-03', { period: 'D2026-12-03', invoiceCount: 0, preTaxFen: 0n, since: null }],
        ['M2026-12', { period: 'M2026-12', invoiceCount: 2, preTaxFen: 90_071_992_547_409_931n, since: AT }],
      ]));
      expect(context.blocks).toEqual([{ blockId: 'first', next: 3, last: 1000 }, { blockId: 'later', next: 1001, last: 2000 }]);
      expect((await opened.store.read.uploads.backlog(merchantId))[0]).toEqual({ kind: 'normal', count: 1, preTaxFen: 90_071_992_547_409_931n, oldestAt: AT });
      expect(context.heads).toEqual([
        { scope: `invoices:${merchantId}`, hash: GENESIS_HASH, index: 0 },
        { scope: `audit:${merchantId}`, hash: 'a'.repeat(64), index: 7 },
      ]);
    });

    // merchants.hold takes the lock without reading the row; on PostgreSQL it goes out together with
    // the read after it, which still starts only once the lock is granted.
    it.each(['lock', 'hold'] as const)('sees what the batch holding the lock before it wrote, however long that batch took (merchants.%s)', async (take) => {
      const first = opened.store.write(async (tx) => {
        await tx.merchants.lock(merchantId);
        await sleep(150); // the second batch is waiting for the lock meanwhile
        await tx.merchants.setLimits(merchantId, { dailyInvoiceLimit: 7, operatorCreditFen: null });
        await tx.usage.add(merchantId, [{ period: 'D2026-12-03', invoiceCount: 1, preTaxFen: 100n }], AT);
        await tx.numberBlocks.insert(block(merchantId, 'refill', 2026, 1, 1000, 2));
        await tx.chain.advance([{ scope: `invoices:${merchantId}`, hash: 'b'.repeat(64), index: 1 }]);
      });
      await sleep(30);
      const second = opened.store.write(async (tx) => {
        await tx.merchants[take](merchantId);
        return tx.issues.context(query);
      });
      await first;
      const context = await second;
      expect(context.merchant?.dailyInvoiceLimit).toBe(7);
      expect(context.usage.get('D2026-12-03')).toMatchObject({ invoiceCount: 1, preTaxFen: 100n });
      expect(context.blocks).toEqual([{ blockId: 'refill', next: 2, last: 1000 }]);
      expect(context.heads[0]).toEqual({ scope: `invoices:${merchantId}`, hash: 'b'.repeat(64), index: 1 });
    });
  });
}
