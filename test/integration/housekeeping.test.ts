// Idempotency keys live at least 24 hours (48 in fact); expired sessions are cleared.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { purgeExpired } from '../../src/app/housekeeping.js';
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
      expect(await purgeExpired(ports)).toEqual({ idempotencyKeys: 0, sessions: 0, verificationCounts: 0 });
      const replay = await issueInvoice(ports, caller, body, 'key-1');
      expect(replay).toMatchObject({ replayed: true, invoice: { number: first.invoice.number } });

      at += 2 * 3600_000;
      expect((await purgeExpired(ports)).idempotencyKeys).toBe(1);
      expect((await issueInvoice(ports, caller, body, 'key-1')).invoice.number).not.toBe(first.invoice.number);
    });
  });
}
