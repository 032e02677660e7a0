// The fast font subsets (glyphs flattened once per process, no subroutines) must draw exactly
// what pdfkit's own per-document subsetting draws: both PDFs are rasterised by poppler and the
// pictures compared pixel for pixel.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { invoiceFont, printableCharacters } from '../../src/documents/font.js';
import { renderInvoicePdf } from '../../src/documents/pdf.js';
import { GENESIS_HASH, sealInvoice, type InvoiceContent } from '../../src/domain/invoice.js';

const work = mkdtempSync(join(tmpdir(), 'fapiao-fonts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Names chosen for many different ideographs, punctuation, Latin, digits and full-width forms.
const content: InvoiceContent = {
  kind: 'normal', pricesIncludeTax: false, remarks: '鑫淼犇骉龘靐齉爨；「引号」——破折号…省略号（全角）ＡＢＣ１２３', number: '26310000000000000042',
  issuedAt: '2026-03-10T10:00:00+08:00', issuer: '欧阳娜娜',
  seller: { name: '上海甲方信息技术有限公司', taxId: '91310000MA1K4XXXX7', address: '上海市浦东新区世纪大道100号', phone: '021-12345678', bank: '中国工商银行上海分行', account: '1001234509876543210' },
  buyer: { name: '乌鲁木齐市沙依巴克区龘鑫贸易商行（个体工商户）', taxId: '91650103MA77XXXX1Q', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [
    { name: '*农产品*新疆阿克苏冰糖心苹果', taxCode: '1010115010100000000', spec: '80#/5kg', unit: '箱', quantity: '12.5', unitPrice: '88.8', taxRate: '0.09', amount: 111000n, tax: 9990n },
    { name: '*餐饮服务*餐费', taxCode: '3070401000000000000', spec: '', unit: '次', quantity: '1', unitPrice: '520', taxRate: 'exempt', amount: 52000n, tax: 0n },
  ],
  totalAmount: 163000n, totalTax: 9990n, totalWithTax: 172990n,
};

describe('fast font subsets', () => {
  it('render pixel for pixel what per-document subsetting renders', async () => {
    const invoice = sealInvoice('m', content, { hash: GENESIS_HASH, index: 0 });
    const pictures = [];
    for (const fonts of ['naive', 'shared'] as const) {
      const file = join(work, `${fonts}.pdf`);
      writeFileSync(file, await renderInvoicePdf(invoice, { fonts }));
      execFileSync('pdftoppm', ['-r', '200', '-gray', '-singlefile', file, join(work, fonts)]);
      pictures.push(readFileSync(join(work, `${fonts}.pgm`)));
    }
    expect(pictures[0]!.length).toBeGreaterThan(1000);
    expect(Buffer.compare(pictures[0]!, pictures[1]!)).toBe(0);
  }, 30_000);
});

describe('the characters an invoice can print', () => {
  it('are exactly those the font draws with a glyph of its own; the rest would print as empty boxes (glyph 0, .notdef)', () => {
    const printable = printableCharacters();
    expect(printable.size).toBeGreaterThan(30_000);
    for (const character of [...'刘䶮𬌗龘㐀商行鑫淼犇骉（）「」…ＡＢＣ１２３¥', '𠀀', '𠮷', '\ue000']) {
      const [glyph] = invoiceFont('regular').layout(character).glyphs as Array<{ id: number }>;
      expect(printable.has(character.codePointAt(0)!), character).toBe(glyph!.id !== 0);
    }
    expect([printable.has(0x20000), printable.has(0x20bb7)]).toEqual([false, false]); // 𠀀, 𠮷
  });
});
