// Writes that arrive together are committed together, yet each succeeds or fails on its own.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { systemClock } from '../../src/domain/time.js';

for (const kind of storesUnderTest) {
  describe(`concurrent writes on ${kind.name}`, () => {
    let opened: OpenedStore;
    let merchantId: string;

    beforeEach(async () => {
      opened = await kind.open();
      merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
    });
    afterEach(() => opened.cleanup());

    it('rolls back only the unit that failed, and answers each unit with its own outcome', async () => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          opened.store.write(async (tx) => {
            await tx.savedItems.upsert(merchantId, { id: `i${i}`, name: `item ${i}`, taxCode: '1'.repeat(19), spec: '', unit: '', unitPrice: '1', taxRate: '0.13', updatedAt: 't' });
            if (i % 3 === 0) throw new Error(`unit ${i} fails after writing`);
            return i;
          }),
        ),
      );
      outcomes.forEach((outcome, i) => {
        if (i % 3 === 0) expect(outcome).toMatchObject({ status: 'rejected', reason: { message: `unit ${i} fails after writing` } });
        else expect(outcome).toEqual({ status: 'fulfilled', value: i });
      });
      const stored = await opened.store.read.savedItems.list(merchantId, undefined, 100);
      expect(stored.map((s) => s.id).sort()).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `i${i}`).sort());
    });

    it('makes a numbering increment roll back with its failed unit, so numbers stay gap-free', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          opened.store.write(async (tx) => {
            const sequence = await tx.series.next(merchantId, 2026);
            if (i % 2 === 1) throw new Error('refused after numbering');
            return sequence;
          }),
        ),
      );
      const sequences = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])).sort((a, b) => a - b);
      expect(sequences).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    });
  });
}
