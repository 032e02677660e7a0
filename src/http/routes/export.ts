// GET /api/v1/invoices/export.csv and export.xlsx (R12): the same filters as GET /api/v1/invoices,
// every matching invoice, streamed. A wrong filter is refused with its fault before the first byte.
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { invoicePages } from '../../app/export-invoices.js';
import { csvStream } from '../../documents/export/csv.js';
import { writeXlsx } from '../../documents/export/xlsx.js';
import { shanghaiDate } from '../../domain/time.js';
import type { HttpContext } from '../context.js';
import { ErrorView, InvoiceQuery } from '../schemas.js';

const ExportQuery = InvoiceQuery.omit({ cursor: true, limit: true });
const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

export function exportRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorView, 401: ErrorView, 403: ErrorView, 422: ErrorView, 429: ErrorView, 503: ErrorView };
  const fileName = (extension: string) => `attachment; filename="fapiao-invoices-${shanghaiDate(ports.clock.now())}.${extension}"`;

  api.get('/api/v1/invoices/export.csv', {
    schema: {
      summary: 'Export invoices as CSV (UTF-8 with BOM, for Excel)', tags: ['invoices'], querystring: ExportQuery,
      response: { 200: z.string().describe('CSV, one row per invoice, newest first'), ...errors },
    },
  }, async (request, reply) => {
    const pages = await invoicePages(ports, request.caller, request.query);
    return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', fileName('csv')).send(csvStream(pages) as never); // a stream: the 200 schema documents it, Fastify pipes it
  });

  api.get('/api/v1/invoices/export.xlsx', {
    schema: {
      summary: 'Export invoices as an Excel workbook', tags: ['invoices'], querystring: ExportQuery,
      response: { 200: z.string().describe('XLSX workbook, one row per invoice, newest first'), ...errors },
    },
  }, async (request, reply) => {
    const pages = await invoicePages(ports, request.caller, request.query);
    const out = new PassThrough();
    // Headers are gone once the first byte is; a failure later can only cut the download short,
    // which a client sees as an unreadable file rather than a half export that looks whole.
    writeXlsx(pages, out).catch((error: unknown) => {
      request.log.warn({ err: error }, 'export: xlsx stream failed');
      out.destroy(error as Error);
    });
    return reply.header('content-type', XLSX_TYPE).header('content-disposition', fileName('xlsx')).send(out as never);
  });
}
