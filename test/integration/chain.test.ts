// R24/R53: any invoice or audit row changed, deleted or inserted behind the application's back
// is found by `chain verify`, which names the invoice.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { voidInvoice } from '../../src/app/void-invoice.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { systemClock } from '../../src/domain/time.js';
import type { Caller } from '../../src/domain/access.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';

const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `#${i}`,
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + i}.00`, tax_rate: '0.06' }],
});

for (const kind of storesUnderTest) {
  describe(`hash chains on ${kind.name}`, () => {
    let opened: OpenedStore;
    let caller: Caller;
    let numbers: string[];
    const ports = () => ({ store: opened.store, clock: systemClock });
    const breaksAt = async () => (await verifyChains(ports())).flatMap((r) => r.breaks.map((b) => `${b.chain}:${b.at}`));

    beforeEach(async () => {
      opened = await kind.open();
      const merchant = await addMerchant(ports(), { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
      await grantTestNumbers(ports(), merchant.id);
      caller = { merchantId: merchant.id, role: 'clerk', actor: 'clerk1' };
      numbers = [];
      for (let i = 0; i < 5; i++) numbers.push((await issueInvoice(ports(), caller, request(i))).invoice.number);
      await voidInvoice(ports(), caller, numbers[1]!, '开错了');
    });
    afterEach(() => opened.cleanup());

    it('verifies untouched chains', async () => {
      const [report] = await verifyChains(ports());
      expect(report).toMatchObject({ invoices: 5, breaks: [] });
      expect(report!.auditEntries).toBe(1 + 5 + 1); // merchant added, 5 issued, 1 voided
    });

    it('names the invoice whose amount was changed with raw SQL', async () => {
      await opened.exec(`update invoice_records set total_with_tax = total_with_tax + 100 where number = '${numbers[2]}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[2]}`]);
    });

    it('finds a change inside the stored lines', async () => {
      await opened.exec(`update invoice_records set content = replace(content, '"unitPrice":"103"', '"unitPrice":"3"') where number = '${numbers[3]}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[3]}`]);
    });

    it('finds a deleted invoice in the middle and at the end', async () => {
      await opened.exec(`delete from invoice_records where number = '${numbers[2]}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[3]}`]);
      await opened.exec(`delete from invoice_records where number = '${numbers[4]}'`);
      expect((await breaksAt()).length).toBeGreaterThanOrEqual(2);
    });

    it('finds a status changed by hand (an invoice un-voided)', async () => {
      await opened.exec(`update invoice_states set status = 'issued', void_reason = null where number = '${numbers[1]}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[1]}`]);
    });

    it('finds an altered audit entry', async () => {
      await opened.exec(`update audit_log set actor = 'someone else' where action = 'invoice.voided'`);
      const breaks = await breaksAt();
      expect(breaks).toHaveLength(1);
      expect(breaks[0]).toMatch(/^audit:/);
    });
  });
}
