// 查询 (R7): exact answers from committed data, scoped to the caller's merchant. Pages go
// newest first by chain position, which is stable under concurrent issuing.
import { authorize, type Caller } from '../domain/access.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { INVOICE_NUMBER_DIGITS, NOT_A_CURSOR } from '../domain/reasons.js';
import type { Invoice, InvoiceKind, InvoiceStatus } from '../domain/invoice.js';
import { parseYuan } from '../domain/money.js';
import { isInvoiceNumber } from '../domain/numbering.js';
import { parseCalendarDate } from '../domain/time.js';
import type { InvoiceFilter, Ports } from './ports.js';
import type { UploadProblem } from './upload-ports.js';

export interface InvoiceQuery {
  date_from?: string;
  date_to?: string;
  buyer_name?: string;
  buyer_tax_id?: string;
  min_total?: string;
  max_total?: string;
  status?: InvoiceStatus;
  kind?: InvoiceKind;
  cursor?: string;
  limit?: number;
}

export interface InvoicePage {
  items: Invoice[];
  nextCursor: string | null;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

function checkNumber(number: string): void {
  if (!isInvoiceNumber(number)) throw new Fault(faults.QUERY_INVALID, { field: 'number', reason: INVOICE_NUMBER_DIGITS });
}

export async function getInvoice(ports: Ports, caller: Caller, number: string): Promise<Invoice> {
  authorize(caller, 'invoice.read');
  checkNumber(number);
  const invoice = await ports.store.read.invoices.get(caller.merchantId, number);
  if (!invoice) throw new Fault(faults.INVOICE_NOT_FOUND, { number });
  return invoice;
}

/** One invoice and what the tax service said about it, if anything (R7), read in one statement. */
export async function getInvoiceWithUpload(ports: Ports, caller: Caller, number: string): Promise<{ invoice: Invoice; problem: UploadProblem | undefined }> {
  authorize(caller, 'invoice.read');
  checkNumber(number);
  const found = await ports.store.read.uploads.invoiceWithProblem(caller.merchantId, number);
  if (!found) throw new Fault(faults.INVOICE_NOT_FOUND, { number });
  return found;
}

export async function listInvoices(ports: Ports, caller: Caller, query: InvoiceQuery): Promise<InvoicePage> {
  authorize(caller, 'invoice.read');
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new Fault(faults.QUERY_INVALID, { field: 'limit', reason: bilingual(`应为 1 到 ${MAX_PAGE_SIZE} 之间的整数`, `a whole number from 1 to ${MAX_PAGE_SIZE}`) });
  }
  const filter = toFilter(query);
  // One row more than asked tells whether another page exists.
  const rows = await ports.store.read.invoices.list(caller.merchantId, filter, limit + 1);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.chainIndex) : null };
}

function toFilter(q: InvoiceQuery): InvoiceFilter {
  const filter: InvoiceFilter = {
    dateFrom: q.date_from === undefined ? undefined : date(q.date_from, 'date_from'),
    dateTo: q.date_to === undefined ? undefined : date(q.date_to, 'date_to'),
    buyerName: q.buyer_name || undefined,
    buyerTaxId: q.buyer_tax_id || undefined,
    minTotal: q.min_total === undefined ? undefined : parseYuan(q.min_total, 'min_total'),
    maxTotal: q.max_total === undefined ? undefined : parseYuan(q.max_total, 'max_total'),
    status: q.status,
    kind: q.kind,
    beforeIndex: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
  };
  if (filter.dateFrom && filter.dateTo && filter.dateFrom > filter.dateTo) {
    throw new Fault(faults.QUERY_INVALID, { field: 'date_to', reason: bilingual('截止日期 date_to 早于起始日期 date_from', 'date_to is before date_from') });
  }
  if (filter.minTotal !== undefined && filter.maxTotal !== undefined && filter.minTotal > filter.maxTotal) {
    throw new Fault(faults.QUERY_INVALID, { field: 'max_total', reason: bilingual('价税合计上限 max_total 小于下限 min_total', 'max_total is below min_total') });
  }
  return filter;
}

function date(text: string, field: string): string {
  const parsed = parseCalendarDate(text);
  if (!parsed) throw new Fault(faults.DATE_INVALID, { field, reason: bilingual(`“${text}”不是 YYYY-MM-DD 格式的日期`, `"${text}" is not a date written YYYY-MM-DD`) }, [{ field, issue: 'not a date' }]);
  return parsed;
}

function encodeCursor(chainIndex: number): string {
  return Buffer.from(`i:${chainIndex}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^i:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new Fault(faults.QUERY_INVALID, { field: 'cursor', reason: NOT_A_CURSOR });
  return Number(match[1]);
}
