import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { issueInvoice } from '../../app/issue-invoice.js';
import { getInvoiceWithUpload, listInvoices } from '../../app/query-invoices.js';
import { voidInvoice } from '../../app/void-invoice.js';
import { bilingual, Fault, faults } from '../../domain/faults.js';
import type { HttpContext } from '../context.js';
import { ErrorView, InvoicePageView, InvoiceQuery, InvoiceView, IssueRequest, NumberParams, VoidRequest } from '../schemas.js';
import { invoiceDetailView, invoiceView } from '../views.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

export function invoiceRoutes(app: FastifyInstance, { ports, metrics, admission }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorView, 401: ErrorView, 403: ErrorView, 404: ErrorView, 409: ErrorView, 413: ErrorView, 415: ErrorView, 422: ErrorView, 429: ErrorView, 503: ErrorView, 507: ErrorView };

  api.post('/api/v1/invoices', {
    schema: {
      summary: 'Issue an invoice (开具)',
      description: 'Answers 201 only after the invoice is durably stored. Send an Idempotency-Key to retry safely: the same key and body return the same invoice.',
      tags: ['invoices'],
      headers: z.object({ 'idempotency-key': z.string().optional() }),
      body: IssueRequest,
      response: { 200: InvoiceView, 201: InvoiceView, ...errors },
    },
  }, async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new Fault(faults.IDEMPOTENCY_KEY_INVALID, { reason: bilingual('应为 1–128 个可见 ASCII 字符', '1–128 visible ASCII characters') }, [{ field: 'idempotency-key', issue: '1–128 visible ASCII characters' }]);
    try {
      const { invoice, replayed } = await admission.run(() => issueInvoice(ports, request.caller, request.body, key));
      if (!replayed) metrics.invoicesIssued.inc({ kind: invoice.kind });
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(invoiceView(invoice));
    } catch (error) {
      metrics.issueFailures.inc({ code: error instanceof Fault ? error.code : 9001 });
      throw error;
    }
  });

  api.get('/api/v1/invoices', {
    schema: { summary: 'Find invoices (查询)', tags: ['invoices'], querystring: InvoiceQuery, response: { 200: InvoicePageView, ...errors } },
  }, async (request) => {
    const page = await listInvoices(ports, request.caller, request.query);
    return { items: page.items.map(invoiceView), next_cursor: page.nextCursor };
  });

  api.get('/api/v1/invoices/:number', {
    schema: { summary: 'One invoice by number', tags: ['invoices'], params: NumberParams, response: { 200: InvoiceView, ...errors } },
  }, async (request) => {
    const { invoice, problem } = await getInvoiceWithUpload(ports, request.caller, request.params.number);
    return invoiceDetailView(invoice, problem);
  });

  api.post('/api/v1/invoices/:number/void', {
    schema: { summary: 'Void an invoice (作废) in its month of issue', tags: ['invoices'], params: NumberParams, body: VoidRequest, response: { 200: InvoiceView, ...errors } },
  }, async (request) => invoiceView(await voidInvoice(ports, request.caller, request.params.number, request.body.reason)));
}
