// Export (R12): the invoices of any query, for accounting (财务结算), a page at a time. The pages
// come from the same query and cursor as GET /api/v1/invoices (newest first by chain position,
// stable under concurrent issuing), so an export of 100,000 invoices never holds more than one
// page in memory; the writers in src/documents/export turn each page into CSV or XLSX as it comes.
import { authorize, type Caller } from '../domain/access.js';
import type { Invoice } from '../domain/invoice.js';
import { listInvoices, MAX_PAGE_SIZE, type InvoiceQuery } from './query-invoices.js';
import type { Ports } from './ports.js';

export type ExportQuery = Omit<InvoiceQuery, 'cursor' | 'limit'>;

/**
 * The pages of the query. The first page is read before this resolves, so a query that is wrong
 * (a bad date, a bad amount) is refused with its fault before anything is streamed.
 */
export async function invoicePages(ports: Ports, caller: Caller, query: ExportQuery, pageSize = MAX_PAGE_SIZE): Promise<AsyncIterable<Invoice[]>> {
  authorize(caller, 'invoice.read');
  const first = await listInvoices(ports, caller, { ...query, limit: pageSize });
  return (async function* pages() {
    let page = first;
    for (;;) {
      if (page.items.length > 0) yield page.items;
      if (!page.nextCursor) return;
      page = await listInvoices(ports, caller, { ...query, limit: pageSize, cursor: page.nextCursor });
    }
  })();
}
