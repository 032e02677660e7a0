// The invoice PDF at the edges of what the API accepts, checked on the rendered page: the 单价
// column of a tax-inclusive invoice.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, oneLine, sampleInvoice, startApi, type Api } from '../support/http.js';

for (const kind of storesUnderTest) {
  describe(`invoice PDF layout at the limits on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let work: string;

    beforeAll(async () => {
      opened = await kind.open();
      work = mkdtempSync(join(tmpdir(), 'fapiao-pdf-layout-'));
      api = await startApi(opened.store);
    });
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    async function issuedPdf(invoice: object, name: string): Promise<{ view: any; file: string }> {
      const view = body(await api.issue(api.a.keys.clerk, invoice));
      expect(view.number, JSON.stringify(view)).toMatch(/^\d{20}$/);
      const response = await api.get(api.a.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(response.statusCode).toBe(200);
      const file = join(work, `${name}.pdf`);
      writeFileSync(file, response.rawPayload);
      return { view, file };
    }

    const layoutText = (file: string) => execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });

    describe('the lines table', () => {
      let inclusive: { view: any; file: string };

      beforeAll(async () => {
        inclusive = await issuedPdf(sampleInvoice({ prices_include_tax: true, lines: [oneLine('3', '33.33', '0.06')] }), 'tax-inclusive');
      });

      it('prints 单价 excluding tax beside 金额 on a tax-inclusive invoice: 金额 ÷ 数量 to 8 decimals', () => {
        // 3 × 33.33 = 99.99 with tax; 94.33 before tax, 5.66 tax; 94.33 ÷ 3 = 31.443333…
        expect(layoutText(inclusive.file)).toMatch(/ 3 +31\.44333333 +94\.33 +6% +5\.66\n/);
      });

      it('keeps the price as requested in the invoice itself', () => {
        expect(inclusive.view.prices_include_tax).toBe(true);
        expect(inclusive.view.lines[0]).toMatchObject({ quantity: '3', unit_price: '33.33', amount: '94.33', tax: '5.66' });
      });

      it('prints the price as entered on a tax-exclusive invoice', async () => {
        const exclusive = await issuedPdf(sampleInvoice({ lines: [oneLine('3', '33.333', '0.06')] }), 'tax-exclusive');
        expect(layoutText(exclusive.file)).toMatch(/ 3 +33\.333 +100\.00 +6% +6\.00\n/);
      });
    });
  });
}
