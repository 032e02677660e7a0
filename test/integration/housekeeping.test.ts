// Idempotency keys live at least 24 hours (48 in fact); expired sessions are cleared; the records
// of uploaded invoices are dropped, and never one still to upload.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { purgeExpired } from '../../src/app/housekeeping.js';
import { UPLOAD_TOPIC } from '../../src/app/upload-worker.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';

const body: InvoiceRequest = {
  kind: 'normal', prices_include_tax: false, remarks: '',
  buyer: { name: '张三', tax_id: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*餐饮服务*餐费', tax_code: '3070401000000000000', spec: '', unit: '次', quantity: '1', unit_price: '88.00', tax_rate: '0.06' }],
};

for (const kind of storesUnderTest) {
  describe(`housekeeping on ${kind.name}`, () => {
    let opened: OpenedStore;
    let at = Date.parse('2026-11-22T02:00:00Z');
    const clock = { now: () => new Date(at) };

    beforeEach(async () => {
      opened = await kind.open();
      at = Date.parse('2026-11-22T02:00:00Z');
    });
    afterEach(() => opened.cleanup());

    it('replays an Idempotency-Key for 24 hours and more, and forgets it after 48', async () => {
      const ports = { store: opened.store, clock };
      const merchant = await addMerchant(ports, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' });
      await grantTestNumbers(ports, merchant.id);
      const caller = { merchantId: merchant.id, role: 'clerk' as const, actor: 'pos' };
      const first = await issueInvoice(ports, caller, body, 'key-1');

      at += 47 * 3600_000;
      expect(await purgeExpired(ports)).toEqual({ idempotencyKeys: 0, sessions: 0, verificationCounts: 0, uploadRecords: 0 });
      const replay = await issueInvoice(ports, caller, body, 'key-1');
      expect(replay).toMatchObject({ replayed: true, invoice: { number: first.invoice.number } });

      at += 2 * 3600_000;
      expect((await purgeExpired(ports)).idempotencyKeys).toBe(1);
      expect((await issueInvoice(ports, caller, body, 'key-1')).invoice.number).not.toBe(first.invoice.number);
    });

    it('drops the records of uploaded invoices, never one still to upload, however long that one waits', async () => {
      const ports = { store: opened.store, clock };
      const merchant = await addMerchant(ports, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' });
      await grantTestNumbers(ports, merchant.id);
      const caller = { merchantId: merchant.id, role: 'clerk' as const, actor: 'pos' };
      for (let i = 0; i < 4; i++) await issueInvoice(ports, caller, body);
      const now = shanghaiTimestamp(clock.now());
      const claim = () => opened.store.write((tx) => tx.outbox.claim({ topic: UPLOAD_TOPIC, owner: 'w', now, leaseUntil: shanghaiTimestamp(new Date(at + 60_000)), limit: 10 }));
      const ids = (await claim()).map((j) => j.id);
      const recordsLeft = async () => (await opened.store.read.uploads.records(merchant.id, ids)).map((r) => r.jobId).sort((a, b) => a - b);
      expect(ids).toHaveLength(4);
      expect((await purgeExpired(ports)).uploadRecords).toBe(0);

      // The oldest job is still pending: the done ones after it go, its record stays.
      expect(await opened.store.write((tx) => tx.uploads.completeJobs(ids.slice(1), 'w', now))).toEqual(ids.slice(1));
      expect((await purgeExpired(ports, AbortSignal.abort())).uploadRecords).toBe(0); // a shutdown stops it before the next window
      expect(await recordsLeft()).toEqual(ids);
      expect((await purgeExpired(ports)).uploadRecords).toBe(3);
      expect(await recordsLeft()).toEqual(ids.slice(0, 1));

      // A job issued now keeps its record too; a window of one record looks at one record.
      const later = await issueInvoice(ports, caller, body);
      const [pending] = await claim();
      expect(pending!.subject).toBe(later.invoice.number);
      expect(await opened.store.write((tx) => tx.uploads.completeJobs(ids.slice(0, 1), 'w', now))).toEqual(ids.slice(0, 1));
      expect(await opened.store.write((tx) => tx.uploads.purgeRecords(0, 1))).toEqual({ deleted: 1, next: ids[0] });
      expect(await opened.store.write((tx) => tx.uploads.purgeRecords(ids[0]!, 1))).toEqual({ deleted: 0, next: pending!.id });
      expect(await opened.store.write((tx) => tx.uploads.purgeRecords(pending!.id, 1))).toEqual({ deleted: 0, next: null });
      expect(await recordsLeft()).toEqual([]);
      expect(await opened.store.read.uploads.records(merchant.id, [pending!.id])).toHaveLength(1);
    });
  });
}
