// Printing (R21): printers with their backup and health, print jobs with their state, and a print
// of an invoice on request. Whatever the printers do, GET /api/v1/invoices/{number}/pdf serves the
// PDF for printing by hand (手动打印); every job view links to it.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { addPrinter, cancelPrintJob, checkPrinter, getPrintJob, listPrinters, listPrintJobs, printInvoice, removePrinter, updatePrinter } from '../../app/printing.js';
import type { PrinterRecord } from '../../app/delivery-ports.js';
import { printerDriver } from '../../documents/print-queue.js';
import { bilingual, Fault, faultMessage, faults } from '../../domain/faults.js';
import { NOT_A_CURSOR } from '../../domain/reasons.js';
import { printJobStates, type PrintJob } from '../../domain/print-job.js';
import type { HttpContext } from '../context.js';
import { ErrorView, IdParams, NoContent, NumberParams } from '../schemas.js';

const PrinterRequest = z.strictObject({
  name: z.string().max(50).describe('e.g. 前台打印机'),
  backend: z.enum(['cups', 'directory']).describe('cups: a CUPS queue; directory: a hot folder a print station watches'),
  target: z.string().max(500).describe('the CUPS queue name, or the absolute directory path'),
  backup_printer_id: z.string().max(64).nullable().optional().describe('takes the jobs when this printer fails'),
  default: z.boolean().optional().describe('print every issued invoice here'),
});
const PrinterPatch = PrinterRequest.partial();

const PrinterView = z.object({
  id: z.string(), name: z.string(), backend: z.enum(['cups', 'directory']), target: z.string(), backup_printer_id: z.string().nullable(), default: z.boolean(),
  health: z.enum(['unknown', 'ok', 'failing']), health_detail: z.string(), health_at: z.string().nullable(), created_at: z.string(),
});

const PrintJobView = z.object({
  id: z.string(), invoice_number: z.string(), printer_id: z.string(), original_printer_id: z.string(), state: z.enum(printJobStates),
  attempts: z.number().int(), total_attempts: z.number().int(), external_id: z.string().nullable(), last_error: z.string().nullable(),
  next_attempt_at: z.string().nullable(), created_at: z.string(), updated_at: z.string(), printed_at: z.string().nullable(), moved_at: z.string().nullable(),
  requested_by: z.string(),
  pdf: z.string().describe('the PDF, always downloadable for printing by hand (手动打印)'),
  advice: z.string().nullable().describe('what to do when the job failed for good'),
});
const JobQuery = z.strictObject({
  invoice_number: z.string().max(40).optional(),
  printer_id: z.string().max(64).optional(),
  state: z.enum(printJobStates).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

const printerView = (p: PrinterRecord) => ({
  id: p.id, name: p.name, backend: p.backend, target: p.target, backup_printer_id: p.backupPrinterId, default: p.isDefault,
  health: p.health, health_detail: p.healthDetail, health_at: p.healthAt, created_at: p.createdAt,
});

export const printJobView = (j: PrintJob) => ({
  id: j.id, invoice_number: j.invoiceNumber, printer_id: j.printerId, original_printer_id: j.originalPrinterId, state: j.state, attempts: j.attempts,
  total_attempts: j.totalAttempts, external_id: j.externalId, last_error: j.lastError, next_attempt_at: j.state === 'queued' ? j.nextAttemptAt : null,
  created_at: j.createdAt, updated_at: j.updatedAt, printed_at: j.printedAt, moved_at: j.movedAt, requested_by: j.requestedBy,
  pdf: `/api/v1/invoices/${j.invoiceNumber}/pdf`,
  // last_error is recorded in Chinese, the language of this advice.
  advice: j.state === 'failed' ? `${faultMessage(faults.PRINT_JOB_FAILED, { job: j.id, reason: bilingual(j.lastError ?? '', j.lastError ?? '') }, 'zh')} ${faults.PRINT_JOB_FAILED.remedy}` : null,
});

function encodeCursor(j: PrintJob): string {
  return Buffer.from(`${j.createdAt}|${j.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const match = /^([\d\-T:.+]{10,40})\|(\w{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new Fault(faults.QUERY_INVALID, { field: 'cursor', reason: NOT_A_CURSOR });
  return { createdAt: match[1]!, id: match[2]! };
}

const toInput = (b: z.infer<typeof PrinterPatch>) => ({
  ...(b.name !== undefined && { name: b.name }), ...(b.backend !== undefined && { backend: b.backend }), ...(b.target !== undefined && { target: b.target }),
  ...(b.backup_printer_id !== undefined && { backupPrinterId: b.backup_printer_id }), ...(b.default !== undefined && { isDefault: b.default }),
});

export function printingRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorView, 401: ErrorView, 403: ErrorView, 404: ErrorView, 409: ErrorView, 422: ErrorView, 429: ErrorView, 503: ErrorView };
  const tags = ['printing'];

  api.get('/api/v1/printers', { schema: { summary: 'Printers with their health', tags, response: { 200: z.object({ items: z.array(PrinterView) }), ...errors } } },
    async (request) => ({ items: (await listPrinters(ports, request.caller)).map(printerView) }));

  api.post('/api/v1/printers', { schema: { summary: 'Add a printer', tags, body: PrinterRequest, response: { 201: PrinterView, ...errors } } },
    async (request, reply) => reply.code(201).send(printerView(await addPrinter(ports, request.caller, { ...toInput(request.body), name: request.body.name, backend: request.body.backend, target: request.body.target }))));

  api.patch('/api/v1/printers/:id', { schema: { summary: 'Change a printer (target, backup, default)', tags, params: IdParams, body: PrinterPatch, response: { 200: PrinterView, ...errors } } },
    async (request) => printerView(await updatePrinter(ports, request.caller, request.params.id, toInput(request.body))));

  api.delete('/api/v1/printers/:id', { schema: { summary: 'Remove a printer', tags, params: IdParams, response: { 204: NoContent, ...errors } } },
    async (request, reply) => {
      await removePrinter(ports, request.caller, request.params.id);
      return reply.code(204).send(null);
    });

  api.get('/api/v1/printers/:id/status', { schema: { summary: 'Ask the printer now whether it takes jobs', tags, params: IdParams, response: { 200: PrinterView, ...errors } } },
    async (request) => printerView(await checkPrinter(ports, request.caller, request.params.id, (p) => printerDriver(p).readiness())));

  api.post('/api/v1/invoices/:number/print', {
    schema: {
      summary: 'Print the invoice (on the default printer unless printer_id is given)', tags, params: NumberParams,
      body: z.strictObject({ printer_id: z.string().max(64).optional() }).optional(), response: { 202: PrintJobView, ...errors },
    },
  }, async (request, reply) => reply.code(202).send(printJobView(await printInvoice(ports, request.caller, request.params.number, request.body?.printer_id))));

  api.get('/api/v1/print-jobs', {
    schema: { summary: 'Print jobs, newest first', tags, querystring: JobQuery, response: { 200: z.object({ items: z.array(PrintJobView), next_cursor: z.string().nullable() }), ...errors } },
  }, async (request) => {
    const q = request.query;
    const limit = q.limit ?? 50;
    const rows = await listPrintJobs(ports, request.caller, {
      invoiceNumber: q.invoice_number, printerId: q.printer_id, state: q.state, limit: limit + 1, ...(q.cursor && { before: decodeCursor(q.cursor) }),
    });
    const items = rows.slice(0, limit);
    return { items: items.map(printJobView), next_cursor: rows.length > limit ? encodeCursor(items.at(-1)!) : null };
  });

  api.get('/api/v1/print-jobs/:id', { schema: { summary: 'One print job', tags, params: IdParams, response: { 200: PrintJobView, ...errors } } },
    async (request) => printJobView(await getPrintJob(ports, request.caller, request.params.id)));

  api.post('/api/v1/print-jobs/:id/cancel', { schema: { summary: 'Cancel a job still waiting in the queue', tags, params: IdParams, response: { 200: PrintJobView, ...errors } } },
    async (request) => printJobView(await cancelPrintJob(ports, request.caller, request.params.id)));
}
