// 号段: numbers come from blocks the tax service grants. Gap-free within a block, taken in block
// order, given back by a refused issue, refused with 4020 when none is left, and topped up from a
// real sandbox to about a day of the merchant's recent issuing with a floor, and at once, between
// upkeep rounds, when the reserve falls below that floor.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addMerchant } from '../../src/app/merchants.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { grantNumberBlock, refillNumbers } from '../../src/app/number-blocks.js';
import { createUpkeep } from '../../src/app/upstream-upkeep.js';
import type { MerchantRecord, Ports } from '../../src/app/ports.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';
import { bilingual, Fault, faults } from '../../src/domain/faults.js';
import { UpstreamFault } from '../../src/upstream/client.js';
import { serializeContingencyTerms } from '../../src/domain/contingency.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { movableClock, validUscc, type MovableClock } from '../support/http.js';
import { startTestSandbox, type TestSandbox } from '../support/sandbox.js';

const body = (yuan = '10.00'): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: '',
  buyer: { name: '张三', tax_id: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*餐饮服务*餐费', tax_code: '3070401000000000000', spec: '', unit: '次', quantity: '1', unit_price: yuan, tax_rate: '0.06' }],
});
const clerk = (merchantId: string) => ({ merchantId, role: 'clerk' as const, actor: 'pos' });
const faultCode = (error: unknown) => (error instanceof Fault ? error.spec.code : error);
let seed = 52_000_000 + Math.floor(Math.random() * 1_000_000) * 2;

for (const kind of storesUnderTest) {
  describe(`number blocks on ${kind.name}`, () => {
    let opened: OpenedStore;
    let clock: MovableClock;
    let ports: Ports;
    let merchant: MerchantRecord;
    let sandbox: TestSandbox;
    const sequences = async (n: number, yuan?: string) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(Number((await issueInvoice(ports, clerk(merchant.id), body(yuan))).invoice.number.slice(-15)));
      return out;
    };

    beforeAll(async () => {
      sandbox = await startTestSandbox();
    });
    afterAll(() => sandbox.close());
    beforeEach(async () => {
      opened = await kind.open();
      clock = movableClock();
      ports = { store: opened.store, clock };
      merchant = await addMerchant(ports, { name: '销售方', taxId: validUscc((seed += 2)), regionCode: '35' });
    });
    afterEach(() => opened.cleanup());

    it('takes sequences gap-free from the oldest open block, then from the next one', async () => {
      await grantNumberBlock(ports, merchant.id, { year: 2026, first: 10, last: 12 });
      await grantNumberBlock(ports, merchant.id, { year: 2026, first: 1, last: 3 });
      expect(await sequences(6)).toEqual([1, 2, 3, 10, 11, 12]);
      expect(await opened.store.read.numberBlocks.reserve(merchant.id, 2026)).toEqual({ remaining: 0, blocks: 0 });
    });

    it('refuses with 4020 when no number is left, and stores nothing', async () => {
      await grantNumberBlock(ports, merchant.id, { year: 2026, first: 1, last: 1 });
      await sequences(1);
      const refused = await issueInvoice(ports, clerk(merchant.id), body()).then(() => undefined, (e: unknown) => e);
      expect(faultCode(refused)).toBe(4020);
      expect((refused as Fault).retryAfterSeconds).toBeGreaterThan(0);
      expect(await opened.store.read.invoices.count(merchant.id)).toBe(1);
    });

    it('gives the number of a refused issue back: the next invoice takes it', async () => {
      await grantNumberBlock(ports, merchant.id, { year: 2026, first: 1, last: 100 });
      // An offline amount limit of ¥20: the second ¥10.60 invoice (¥10 before tax) fits, the third is refused after taking its number.
      await opened.store.write((tx) => tx.terms.save(merchant.id, { contingencyJson: serializeContingencyTerms([{ kind: 'normal', maxOfflineHours: 72, maxOfflineAmountFen: 2_000n }]), grantedCreditFen: null, fetchedAt: '2026-03-10T10:00:00.000+08:00' }));
      await opened.store.write((tx) => tx.upstreamState.put({ merchantId: merchant.id, mode: 'contingency', since: '2026-03-10T09:00:00.000+08:00', lastError: 'test', lastSuccessAt: null, warnedAt: null, alertedAt: null }));
      expect(await sequences(2)).toEqual([1, 2]);
      expect(faultCode(await sequences(1).catch((e: unknown) => e))).toBe(4022);
      await opened.store.write((tx) => tx.terms.save(merchant.id, { contingencyJson: '[]', grantedCreditFen: null, fetchedAt: '2026-03-10T10:00:00.000+08:00' }));
      expect(await sequences(1)).toEqual([3]);
    });

    it('refuses a granted block that overlaps one the merchant holds (4023) and keeps the reserve as it was', async () => {
      await grantNumberBlock(ports, merchant.id, { year: 2026, first: 1, last: 100 });
      for (const overlap of [{ first: 100, last: 200 }, { first: 50, last: 60 }, { first: 0, last: 5 }]) {
        expect(faultCode(await grantNumberBlock(ports, merchant.id, { year: 2026, ...overlap }).catch((e: unknown) => e))).toBe(4023);
      }
      await grantNumberBlock(ports, merchant.id, { year: 2027, first: 1, last: 100 }); // another year's series
      expect(await opened.store.read.numberBlocks.reserve(merchant.id, 2026)).toEqual({ remaining: 100, blocks: 1 });
    });

    it('tops up from the sandbox to a day of recent issuing, with a floor, and not before it is needed', async () => {
      const taxService = sandbox.client(opened.store, clock);
      const policy = { floor: 20, days: 1, maxBlock: 100_000 };
      // A new merchant: the floor, twice over.
      const [first] = await refillNumbers(ports, taxService, merchant, policy);
      expect(first).toMatchObject({ year: 2026, target: 20, remaining: 40, fetched: { first: 1, last: 40, source: 'upstream' } });
      expect((await refillNumbers(ports, taxService, merchant, policy))[0]!.fetched).toBeUndefined();
      // 10:00 in Shanghai, 20 issued today → 48 a day; 20 left is below that.
      expect(await sequences(20)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const [second] = await refillNumbers(ports, taxService, merchant, policy);
      expect(second).toMatchObject({ target: 48, fetched: { first: 41, last: 116 } });
      expect(second!.remaining).toBe(96);
      // Issuing goes on into the new block without a gap.
      expect(await sequences(21)).toEqual([...Array.from({ length: 20 }, (_, i) => i + 21), 41]);
    });

    it('never leaves a granted block unused: a block granted but not stored (the process killed, the answer lost) comes with the next top-up, not a second one', async () => {
      const taxService = sandbox.client(opened.store, clock);
      const policy = { floor: 20, days: 1, maxBlock: 100_000 };
      // The tax service grants the block; the process dies before storing it, or a proxy in between
      // answers 404 instead.
      const answerLost = (failure: Error) => ({ ...taxService, allocateBlock: async (...args: Parameters<typeof taxService.allocateBlock>) => {
        await taxService.allocateBlock(...args);
        throw failure;
      } });
      await expect(refillNumbers(ports, answerLost(new Error('killed between the grant and the store')), merchant, policy)).rejects.toThrow('killed');
      const proxy404 = new UpstreamFault(faults.UPSTREAM_REQUEST_REFUSED, { reason: bilingual('HTTP 404', 'HTTP 404') }, false, 'NOT_FOUND');
      await expect(refillNumbers(ports, answerLost(proxy404), merchant, policy)).rejects.toBe(proxy404); // the same request, sent again
      expect(await opened.store.read.numberBlocks.reserve(merchant.id, 2026)).toEqual({ remaining: 0, blocks: 0 });
      const [again] = await refillNumbers(ports, taxService, merchant, policy);
      expect(again).toMatchObject({ remaining: 40, fetched: { first: 1, last: 40 } }); // the block granted before
      expect(await opened.store.read.numberBlocks.requests(merchant.id)).toEqual([]);
      expect((await refillNumbers(ports, taxService, merchant, policy))[0]!.fetched).toBeUndefined();
      expect(await sequences(40)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const [next] = await refillNumbers(ports, taxService, merchant, policy);
      expect(next!.fetched).toMatchObject({ first: 41 }); // the tax service granted nothing else meanwhile
    });

    it('crosses off a block request the tax service finds malformed, and one of a year gone by, so later top-ups are not held back', async () => {
      const taxService = sandbox.client(opened.store, clock);
      await opened.store.write(async (tx) => {
        await tx.numberBlocks.addRequest(merchant.id, { requestId: 'last-year', year: 2025, size: 20 }, '2025-12-31T23:59:00.000+08:00');
        await tx.numberBlocks.addRequest(merchant.id, { requestId: 'refused-size', year: 2026, size: 0 }, '2026-03-10T10:00:00.000+08:00');
      });
      await expect(refillNumbers(ports, taxService, merchant, { floor: 20, days: 1, maxBlock: 100_000 })).rejects.toMatchObject({ code: 4009, upstreamCode: 'BAD_REQUEST' });
      expect(await opened.store.read.numberBlocks.requests(merchant.id)).toEqual([]);
      const [result] = await refillNumbers(ports, taxService, merchant, { floor: 20, days: 1, maxBlock: 100_000 });
      expect(result).toMatchObject({ remaining: 40, fetched: { first: 1, last: 40 } });
    });

    it('tops up a reserve that falls below the floor without waiting for the next round, and backs off while the tax service is down', async () => {
      const client = sandbox.client(opened.store, clock, { maxAttempts: 1 });
      let allocations = 0;
      const taxService = { ...client, allocateBlock: (...args: Parameters<typeof client.allocateBlock>) => ((allocations += 1), client.allocateBlock(...args)) };
      const upkeep = createUpkeep(ports, taxService, { intervalMs: 3_600_000, lowReserveCheckMs: 20, reserve: { floor: 20, days: 1, maxBlock: 100_000 } });
      const remaining = async () => (await opened.store.read.numberBlocks.reserve(merchant.id, 2026)).remaining;
      const until = async (check: () => Promise<boolean>) => {
        for (let i = 0; i < 250 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
        expect(await check()).toBe(true);
      };
      upkeep.start();
      try {
        await until(async () => (await remaining()) === 40); // the first round: the floor, twice over
        expect(allocations).toBe(1);
        // 20 issued (10:00 in Shanghai → 48 a day): 20 left is not below the floor, nothing is fetched.
        await sequences(20);
        await new Promise((r) => setTimeout(r, 200));
        expect(allocations).toBe(1);
        // One more: 19 left, below the floor. Topped up within moments, long before the next round.
        await sequences(1);
        await until(async () => (await remaining()) > 19);
        expect(await remaining()).toBe(2 * 51); // twice the target: 21 by 10:00 is 51 a day
        expect(allocations).toBe(2);

        // The tax service down: one failed try, then none until the backoff (20 ms, then 40, 80 …) has passed.
        await sandbox.fault('down');
        await sequences(102 - 19);
        await until(async () => allocations === 3);
        await new Promise((r) => setTimeout(r, 200));
        expect(allocations).toBe(3);
        clock.advance(20);
        await until(async () => allocations === 4);
        await new Promise((r) => setTimeout(r, 200));
        expect(allocations).toBe(4);
        // Healed: the next try after the (now 40 ms) backoff fetches the block.
        await sandbox.clear();
        clock.advance(40);
        await until(async () => (await remaining()) >= 20);
        expect(allocations).toBe(5);
      } finally {
        await upkeep.stop();
        await sandbox.clear();
      }
    });

    it('runs one upkeep of a merchant at a time in a process: a top-up asked for during a round joins it', async () => {
      const client = sandbox.client(opened.store, clock, { maxAttempts: 1 });
      let allocations = 0;
      const taxService = { ...client, allocateBlock: (...args: Parameters<typeof client.allocateBlock>) => ((allocations += 1), client.allocateBlock(...args)) };
      const upkeep = createUpkeep(ports, taxService, { reserve: { floor: 20, days: 1, maxBlock: 100_000 } });
      // The job lease is re-entrant for its owner, so only the process's own bookkeeping keeps these apart.
      await Promise.all([upkeep.merchant(merchant), upkeep.merchant(merchant), upkeep.merchant(merchant)]);
      expect(allocations).toBe(1);
      expect(await opened.store.read.numberBlocks.reserve(merchant.id, 2026)).toEqual({ remaining: 40, blocks: 1 });
    });

    it('fetches numbers for next year from 25 December on', async () => {
      clock.set('2026-12-25T02:00:00Z');
      const results = await refillNumbers(ports, sandbox.client(opened.store, clock), merchant, { floor: 5, days: 1, maxBlock: 100_000 });
      expect(results.map((r) => [r.year, r.fetched?.first, r.fetched?.last])).toEqual([[2026, 1, 10], [2027, 1, 10]]);
    });
  });
}
