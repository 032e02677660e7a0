// XLSX with exceljs's streaming WorkbookWriter: each row is committed (written out and dropped) as
// soon as it is added, and the writer waits for the output to drain after every page, so memory
// stays flat however many invoices the export holds. Amounts are numbers in yuan with the format
// 0.00: the number is parsed from the exact decimal text made from fen (never computed in floating
// point), and every amount an invoice can carry (below 10^13 fen) has fewer than 15 significant
// digits, so the double Excel stores shows exactly that text.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Invoice } from '../../domain/invoice.js';
import { formatYuan } from '../../domain/money.js';
import { defuseFormula, exportColumns } from './columns.js';

export async function writeXlsx(pages: AsyncIterable<Invoice[]>, out: Writable): Promise<void> {
  // Loaded at the first export, not at start-up (exceljs alone takes about 0.4 s to load).
  const { default: ExcelJS } = await import('exceljs');
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: false });
  workbook.creator = 'Fapiao';
  const sheet = workbook.addWorksheet('发票', { views: [{ state: 'frozen', ySplit: 1 }] });
  sheet.columns = exportColumns.map((column, index) => ({
    header: column.heading,
    key: String(index),
    width: column.width,
    ...(column.amount && { style: { numFmt: '#,##0.00' } }),
  }));
  sheet.getRow(1).font = { bold: true };
  sheet.getRow(1).commit();
  for await (const page of pages) {
    for (const invoice of page) {
      const row = sheet.addRow(exportColumns.map((column) => {
        const cell = column.cell(invoice);
        return 'fen' in cell ? Number(formatYuan(cell.fen)) : defuseFormula(cell.text);
      }));
      row.commit();
    }
    if (out.writableNeedDrain) await once(out, 'drain');
  }
  sheet.commit();
  await workbook.commit();
}
