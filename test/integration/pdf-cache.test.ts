// Rendered PDFs are kept by digest under the data directory, served from there the second time,
// and pruned when unused for a month (with temporary files a crash left behind).
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PdfCache } from '../../src/documents/pdf-cache.js';
import { GENESIS_HASH, sealInvoice, type InvoiceContent } from '../../src/domain/invoice.js';

const dir = mkdtempSync(join(tmpdir(), 'fapiao-pdf-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const content: InvoiceContent = {
  kind: 'normal', pricesIncludeTax: false, remarks: '', number: '26310000000000000007', issuedAt: '2026-03-10T10:00:00+08:00', issuer: '张三',
  seller: { name: '上海甲方信息技术有限公司', taxId: '91310000MA1K4XXXX7', address: '', phone: '', bank: '', account: '' },
  buyer: { name: '北京乙方商贸有限公司', taxId: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*技术服务费', taxCode: '3040201000000000000', spec: '', unit: '项', quantity: '1', unitPrice: '100', taxRate: '0.06', amount: 10000n, tax: 600n }],
  totalAmount: 10000n, totalTax: 600n, totalWithTax: 10600n,
};

describe('the PDF cache', () => {
  const cache = new PdfCache({ publicUrl: 'https://fapiao.test', dir });
  const invoice = sealInvoice('m', content, { hash: GENESIS_HASH, index: 0 });
  const files = () => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.pdf'));

  it('keeps one file per rendered invoice and serves the same bytes from it', async () => {
    const first = await cache.pdfFor(invoice);
    expect(files()).toHaveLength(1);
    const cachedFile = join(dir, files()[0]!);
    writeFileSync(cachedFile, Buffer.concat([first.subarray(0, first.length - 1), Buffer.from('\n')])); // a mark only the cache has
    const second = await cache.pdfFor(invoice);
    expect(second.at(-1)).toBe(0x0a);
    expect(second.length).toBe(first.length);
  });

  it('prunes files unused for a month and stale temporary files, and keeps recent ones', async () => {
    const shard = readdirSync(dir)[0]!;
    writeFileSync(join(dir, shard, 'half-written.pdf.123.1.tmp'), 'x');
    expect(await cache.prune(30, Date.now())).toBe(0);
    expect(await cache.prune(30, Date.now() + 31 * 24 * 3600_000)).toBe(2);
    expect(files()).toHaveLength(0);
    expect(existsSync(join(dir, shard, 'half-written.pdf.123.1.tmp'))).toBe(false);
  });
});
