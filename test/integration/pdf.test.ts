// R20: the PDF of an invoice, checked the way a person would: poppler reads the names, every
// amount and 价税合计 in capitals; the Chinese font is embedded as a subset; zbar decodes the QR
// code, and the URL in it verifies as genuine through the API. The same invoice gives the same bytes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api } from '../support/http.js';
import { openSigner } from '../../src/app/signing-keys.js';
import { checkInvoiceFile, PublicKeys } from '../../src/app/verify-invoice.js';
import { readInvoiceFile } from '../../src/documents/invoice-file.js';

const PUBLIC_URL = 'https://fapiao.test';

for (const kind of storesUnderTest) {
  describe(`invoice PDF on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let work: string;
    let view: any;
    let pdf: Buffer;
    let file: string;

    beforeAll(async () => {
      opened = await kind.open();
      work = mkdtempSync(join(tmpdir(), 'fapiao-pdf-'));
      const signer = await openSigner(opened.store, { now: () => new Date() }, opened.dataDir);
      api = await startApi(opened.store, { signer, http: { documents: { publicUrl: PUBLIC_URL, pdfCacheDir: join(work, 'cache'), verifyPerIpPerMinute: 1000 } } });
      view = body(await api.issue(api.a.keys.clerk, api.sampleInvoice({ kind: 'special', remarks: '合同号 HT-42' })));
      const response = await api.get(api.a.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('application/pdf');
      pdf = response.rawPayload;
      file = join(work, 'invoice.pdf');
      writeFileSync(file, pdf);
    });
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    it('reads as the official layout: title, parties, every amount and 价税合计 in capitals', () => {
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      expect(text).toContain('电子发票（增值税专用发票）');
      expect(text).toContain(view.number);
      expect(text).toContain(view.seller.name);
      expect(text).toContain(view.buyer.name);
      expect(text).toContain(view.buyer.tax_id);
      for (const line of view.lines) {
        expect(text).toContain(line.name);
        expect(text).toContain(line.amount);
        expect(text).toContain(line.tax);
      }
      expect(text).toContain(`¥${view.total_amount}`);
      expect(text).toContain(`¥${view.total_tax}`);
      expect(text).toContain(`¥${view.total_with_tax}`);
      expect(text).toContain(view.total_in_words);
      expect(text).toContain('合同号 HT-42');
      for (const label of ['购', '销', '项目名称', '规格型号', '单位', '数量', '单价', '金额', '税率/征收率', '税额', '价税合计（大写）', '（小写）', '备', '开票人']) {
        expect(text.replace(/ /g, '')).toContain(label.replace(/ /g, ''));
      }
    });

    it('embeds the Chinese font as a subset', () => {
      const fonts = execFileSync('pdffonts', [file], { encoding: 'utf8' }).split('\n').slice(2).filter(Boolean);
      expect(fonts.length).toBeGreaterThan(0);
      for (const row of fonts) {
        // name  type  encoding  emb sub uni
        expect(row).toMatch(/^[A-Z]{6}\+NotoSansHans-\w+\s+CID Type 0C\s+Identity-H\s+yes\s+yes\s+yes/);
      }
      expect(pdf.length).toBeLessThan(400_000); // a subset, not the 8 MB font
    });

    it('has a QR code whose URL verifies as genuine through the API', async () => {
      execFileSync('pdftoppm', ['-r', '150', '-png', '-singlefile', file, join(work, 'page')]);
      const url = execFileSync('zbarimg', ['--raw', '-q', join(work, 'page.png')], { encoding: 'utf8' }).trim();
      expect(url.startsWith(`${PUBLIC_URL}/v/${view.number}-`)).toBe(true);
      const answer = await api.inject({ method: 'GET', url: url.slice(PUBLIC_URL.length), headers: { accept: 'application/json' } });
      expect(body(answer)).toMatchObject({ result: 'genuine', invoice: { number: view.number, total_with_tax: view.total_with_tax } });
    });

    it('is the same bytes every time, from the cache or freshly rendered', async () => {
      const again = await api.get(api.a.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(Buffer.compare(again.rawPayload, pdf)).toBe(0);
      rmSync(join(work, 'cache'), { recursive: true, force: true });
      const fresh = await api.get(api.a.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(Buffer.compare(fresh.rawPayload, pdf)).toBe(0);
    });

    it('carries the signed invoice, which checks against the public keys and fails when altered', async () => {
      const keys = PublicKeys.fromStore(api.ports);
      await expect(checkInvoiceFile(readInvoiceFile(pdf), keys)).resolves.toMatchObject({ number: view.number });
      const altered = readInvoiceFile(pdf);
      altered.invoice.buyer.name = '另一家公司';
      await expect(checkInvoiceFile(altered, keys)).rejects.toMatchObject({ code: 6004 });
    });

    it('is only for the merchant who issued it', async () => {
      const other = await api.get(api.b.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(other.statusCode).toBe(404);
      const anonymous = await api.inject({ method: 'GET', url: `/api/v1/invoices/${view.number}/pdf` });
      expect(anonymous.statusCode).toBe(401);
    });
  });
}
