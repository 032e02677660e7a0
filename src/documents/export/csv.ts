// CSV for Excel and accounting software: UTF-8 with a byte-order mark (without it Excel on a
// Chinese Windows reads the file as GBK and shows mojibake), CRLF line ends and quoting as in
// RFC 4180, formulas defused, amounts as exact decimal yuan text made from fen.
import { Readable } from 'node:stream';
import type { Invoice } from '../../domain/invoice.js';
import { formatYuan } from '../../domain/money.js';
import { defuseFormula, exportColumns, type Cell } from './columns.js';

const BOM = '\uFEFF';

export function csvField(cell: Cell): string {
  if ('fen' in cell) return formatYuan(cell.fen);
  const value = defuseFormula(cell.text);
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvRow(invoice: Invoice): string {
  return `${exportColumns.map((column) => csvField(column.cell(invoice))).join(',')}\r\n`;
}

/** The CSV text, one chunk per page; pulled, so a slow reader slows the queries down. */
export async function* csvChunks(pages: AsyncIterable<Invoice[]>): AsyncGenerator<string> {
  yield `${BOM}${exportColumns.map((column) => csvField({ text: column.heading })).join(',')}\r\n`;
  for await (const page of pages) yield page.map(csvRow).join('');
}

export function csvStream(pages: AsyncIterable<Invoice[]>): Readable {
  return Readable.from(csvChunks(pages), { objectMode: false });
}
