// Export (R12): every invoice of a query as CSV and XLSX, streamed page by page. The files are
// read back the way accounting would read them: the CSV by an RFC 4180 parser, the workbook by
// exceljs's own reader. Amounts must equal the stored fen exactly; text that a spreadsheet would run
// as a formula must arrive as text.
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { invoiceChainScope } from '../../src/domain/audit-chain.js';
import { draftInvoice, type InvoiceRequest } from '../../src/domain/draft.js';
import { printableCharacters } from '../../src/documents/font.js';
import { sealInvoice, type Invoice } from '../../src/domain/invoice.js';
import { invoiceNumber } from '../../src/domain/numbering.js';
import { formatYuan } from '../../src/domain/money.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api, type ErrorBody } from '../support/http.js';

const COUNT = 3_210; // sixteen full pages of 200 and a partial one

/** Buyer names and remarks that a careless CSV writer gets wrong. */
const awkward = [
  { name: '=HYPERLINK("http://evil.example","点我")', remarks: '含逗号, 和"引号"' },
  { name: '+86 某某商店', remarks: '@SUM(A1:A9)' },
  { name: '-1+2 有限公司', remarks: '普通备注' },
  { name: '广州市天河区"好"餐厅', remarks: '' },
];

function request(i: number): InvoiceRequest {
  const special = awkward[i % 50];
  return {
    kind: 'normal', prices_include_tax: false, remarks: special?.remarks ?? `第${i}号`,
    buyer: { name: special?.name ?? `买方${i % 7}`, tax_id: '', address: '', phone: '', bank: '', account: '', email: '' },
    // Amounts vary in fen, so any float rounding on the way to the file would show.
    lines: [{ name: '*餐饮服务*餐费', tax_code: '3070401000000000000', spec: '', unit: '次', quantity: '3', unit_price: `${1 + (i % 97)}.${String(i % 100).padStart(2, '0')}`, tax_rate: '0.06' }],
  };
}

/** RFC 4180: quoted fields may hold commas, quotes (doubled) and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

for (const kind of storesUnderTest) {
  describe(`export on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let expectedTotal = 0n;

    beforeAll(async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
      // A few through the real issue path; the bulk sealed into the chain and stored by the same
      // repositories in big transactions, as the benchmarks fill (issuing thousands one by one
      // would make this test slow without testing anything more of the export).
      const caller = { merchantId: api.a.id, role: 'clerk' as const, actor: 'pos' };
      for (let i = 0; i < 10; i++) expectedTotal += (await issueInvoice(api.ports, caller, request(i))).invoice.totalWithTax;
      const merchant = api.a.record;
      const seller = { name: merchant.name, taxId: merchant.taxId, address: merchant.address, phone: merchant.phone, bank: merchant.bank, account: merchant.account };
      const [head] = await opened.store.read.chain.heads([invoiceChainScope(merchant.id)]);
      let link = { hash: head!.hash, index: head!.index };
      for (let start = 10; start < COUNT; start += 1_000) {
        const rows: Invoice[] = [];
        for (let i = start; i < Math.min(COUNT, start + 1_000); i++) {
          const invoice = sealInvoice(merchant.id, { ...draftInvoice(request(i), printableCharacters()), number: invoiceNumber(2026, merchant.regionCode, 100_000 + i), issuedAt: '2026-03-10T10:00:00.000+08:00', seller, issuer: 'pos' }, link);
          link = { hash: invoice.chainHash, index: invoice.chainIndex };
          expectedTotal += invoice.totalWithTax;
          rows.push(invoice);
        }
        await opened.store.write(async (tx) => {
          await tx.invoices.insert(rows);
          await tx.chain.advance([{ scope: invoiceChainScope(merchant.id), ...link }]);
        });
      }
      await issueInvoice(api.ports, { merchantId: api.b.id, role: 'clerk', actor: 'pos' }, request(1));
    }, 120_000);
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
    });

    it('writes every invoice once as CSV with a BOM, exact amounts and defused formulas', async () => {
      const response = await api.get(api.a.keys.auditor, '/api/v1/invoices/export.csv');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(response.headers['content-disposition']).toMatch(/^attachment; filename="fapiao-invoices-2026-03-10\.csv"$/);
      const text = response.rawPayload.toString('utf8');
      expect(text.startsWith('\uFEFF发票号码,')).toBe(true);
      const [header, ...rows] = parseCsv(text.slice(1));
      expect(header).toEqual(['发票号码', '发票种类', '状态', '开票日期', '开票时间', '购买方名称', '购买方纳税人识别号', '金额', '税额', '价税合计', '开票人', '备注', '作废或红冲原因']);
      expect(rows).toHaveLength(COUNT);
      expect(new Set(rows.map((r) => r[0])).size).toBe(COUNT);
      // Newest first, like the list.
      expect(rows[0]![0]! > rows.at(-1)![0]!).toBe(true);
      let sum = 0n;
      for (const r of rows) {
        expect(r).toHaveLength(13);
        expect(r[9]).toMatch(/^\d+\.\d\d$/);
        sum += BigInt(r[9]!.replace('.', ''));
        expect(BigInt(r[7]!.replace('.', '')) + BigInt(r[8]!.replace('.', ''))).toBe(BigInt(r[9]!.replace('.', '')));
      }
      expect(sum).toBe(expectedTotal);
      const names = new Set(rows.map((r) => r[5]));
      expect(names).toContain(`'=HYPERLINK("http://evil.example","点我")`);
      expect(names).toContain("'+86 某某商店");
      expect(names).toContain("'-1+2 有限公司");
      expect(names).toContain('广州市天河区"好"餐厅');
      expect(new Set(rows.map((r) => r[11]))).toContain('含逗号, 和"引号"');
      expect(new Set(rows.map((r) => r[11]))).toContain("'@SUM(A1:A9)");
      // Merchant B's invoice is not in A's export, and B's export has only its own.
      const other = parseCsv((await api.get(api.b.keys.owner, '/api/v1/invoices/export.csv')).rawPayload.toString('utf8').slice(1));
      expect(other).toHaveLength(2);
      expect(rows.map((r) => r[0])).not.toContain(other[1]![0]);
    });

    it('takes the same filters as the list and exports exactly what the list finds', async () => {
      const filter = { buyer_name: '买方3', min_total: '100.00' };
      const csv = parseCsv((await api.get(api.a.keys.owner, '/api/v1/invoices/export.csv', filter)).rawPayload.toString('utf8').slice(1)).slice(1);
      const listed: string[] = [];
      let cursor: string | undefined;
      do {
        const page = body(await api.get(api.a.keys.owner, '/api/v1/invoices', { ...filter, limit: 200, ...(cursor && { cursor }) }));
        listed.push(...page.items.map((i: { number: string }) => i.number));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      expect(csv.length).toBeGreaterThan(0);
      expect(csv.map((r) => r[0])).toEqual(listed);
    });

    it('writes an XLSX that exceljs reads back, with amounts as numbers formatted 0.00', async () => {
      const response = await api.get(api.a.keys.clerk, '/api/v1/invoices/export.xlsx');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      const workbook = new ExcelJS.Workbook();
      await workbook.xlsx.load(response.rawPayload as unknown as ArrayBuffer);
      const sheet = workbook.getWorksheet('发票')!;
      expect(sheet.rowCount).toBe(COUNT + 1);
      expect(sheet.getRow(1).getCell(1).value).toBe('发票号码');
      let sum = 0n;
      const names = new Set<string>();
      for (let r = 2; r <= sheet.rowCount; r++) {
        const row = sheet.getRow(r);
        const total = row.getCell(10);
        expect(typeof total.value).toBe('number');
        expect(total.numFmt).toBe('#,##0.00');
        // The stored double shows as exactly the two-decimal text of the fen amount.
        const text = (total.value as number).toFixed(2);
        expect(Number(text)).toBe(total.value);
        sum += BigInt(text.replace('.', ''));
        names.add(String(row.getCell(6).value));
      }
      expect(sum).toBe(expectedTotal);
      expect(formatYuan(sum)).toBe(formatYuan(expectedTotal));
      expect(names).toContain(`'=HYPERLINK("http://evil.example","点我")`);
    });

    it('refuses a wrong filter with its fault before streaming anything, and a role without read access', async () => {
      const bad = await api.get(api.a.keys.owner, '/api/v1/invoices/export.csv', { date_from: '2026-02-30' });
      expect(bad.statusCode).toBe(422);
      expect(bad.headers['content-type']).toMatch(/application\/json/);
      expect(body<ErrorBody>(bad).error.code).toBeGreaterThanOrEqual(1000);
      const unknown = await api.get(api.a.keys.owner, '/api/v1/invoices/export.xlsx', { limit: 5 });
      expect(unknown.statusCode).toBe(422);
      expect(body<ErrorBody>(unknown).error.code).toBe(1004);
      const operator = await api.get(api.a.keys.operator, '/api/v1/invoices/export.csv');
      expect(operator.statusCode).toBe(403);
      expect(body<ErrorBody>(operator).error.code).toBe(2006);
    });
  });
}
