// 对账 (R31) over HTTP: run a reconciliation for a date, read the reports and their differences,
// and resolve a difference (upload again, or mark investigated with a note).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getReconciliation, listReconciliations, reconcile, resolveDifference, type ReconciliationResult } from '../../app/reconcile.js';
import type { ReconciliationItem, ReconciliationReport } from '../../app/upstream-ports.js';
import { authorize } from '../../domain/access.js';
import { bilingual, Fault, faults } from '../../domain/faults.js';
import type { TaxService } from '../../upstream/protocol.js';
import type { HttpContext } from '../context.js';
import { ErrorView } from '../schemas.js';

const ReportView = z.object({
  id: z.string(), date: z.string().describe('the issue date reconciled (Asia/Shanghai)'), ran_at: z.string(), actor: z.string(),
  local_count: z.number().int(), upstream_count: z.number().int(), matched: z.number().int(),
  pending: z.number().int().describe('issued here and still waiting for upload: not differences yet'),
  differences: z.number().int(),
});
const ItemView = z.object({
  id: z.number().int(), number: z.string(),
  difference: z.enum(['missing_upstream', 'missing_locally', 'digest_mismatch']),
  local_digest: z.string().nullable(), upstream_digest: z.string().nullable(), local_status: z.string().nullable(),
  resolution: z.enum(['reuploaded', 'investigated']).nullable(), resolved_at: z.string().nullable(), resolved_by: z.string().nullable(), note: z.string().nullable(),
});
const ResultView = z.object({ report: ReportView, items: z.array(ItemView) });
const RunRequest = z.strictObject({ date: z.string().max(20).describe('YYYY-MM-DD, the issue date to reconcile') });
const ResolveRequest = z.strictObject({ action: z.enum(['reupload', 'investigated']), note: z.string().max(2000).optional() });

export const reportView = (r: ReconciliationReport) => ({
  id: r.id, date: r.date, ran_at: r.ranAt, actor: r.actor, local_count: r.localCount, upstream_count: r.upstreamCount, matched: r.matched, pending: r.pending, differences: r.differences,
});
export const itemView = (i: ReconciliationItem) => ({
  id: i.id, number: i.number, difference: i.difference, local_digest: i.localDigest, upstream_digest: i.upstreamDigest, local_status: i.localStatus,
  resolution: i.resolution, resolved_at: i.resolvedAt, resolved_by: i.resolvedBy, note: i.note,
});
export const resultView = (r: ReconciliationResult) => ({ report: reportView(r.report), items: r.items.map(itemView) });

export function reconciliationRoutes(app: FastifyInstance, { ports }: HttpContext, taxService: TaxService | undefined): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 401: ErrorView, 403: ErrorView, 404: ErrorView, 409: ErrorView, 422: ErrorView, 502: ErrorView, 503: ErrorView, 504: ErrorView };
  const tags = ['reconciliation'];

  api.post('/api/v1/reconciliations', { schema: { summary: 'Reconcile one issue date with the tax service (对账); differences raise an alert', tags, body: RunRequest, response: { 201: ResultView, ...errors } } },
    async (request, reply) => {
      authorize(request.caller, 'ops.read');
      if (!taxService) throw new Fault(faults.UPSTREAM_NOT_ENROLLED, { seller: request.caller.merchantId, reason: bilingual('本服务器未配置税务服务', 'no tax service configured for this server') });
      return reply.code(201).send(resultView(await reconcile({ ...ports, taxService }, request.caller, request.body.date)));
    });

  api.get('/api/v1/reconciliations', {
    schema: { summary: 'Reconciliation reports, newest first', tags, querystring: z.strictObject({ date: z.string().max(20).optional(), limit: z.coerce.number().int().min(1).max(200).optional() }), response: { 200: z.object({ items: z.array(ReportView) }), ...errors } },
  }, async (request) => ({ items: (await listReconciliations(ports, request.caller, request.query)).map(reportView) }));

  api.get('/api/v1/reconciliations/:id', { schema: { summary: 'One report with its differences', tags, params: z.strictObject({ id: z.string().max(100) }), response: { 200: ResultView, ...errors } } },
    async (request) => resultView(await getReconciliation(ports, request.caller, request.params.id)));

  api.post('/api/v1/reconciliations/items/:id/resolve', {
    schema: { summary: 'Resolve a difference: upload the invoice again, or mark it investigated with a note', tags, params: z.strictObject({ id: z.coerce.number().int().positive() }), body: ResolveRequest, response: { 200: ItemView, ...errors } },
  }, async (request) => itemView(await resolveDifference(ports, request.caller, request.params.id, request.body)));
}
