// Alerts (预警) for the caller's merchant: reconciliation differences, upload conflicts, offline
// limits coming near. Newest first.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { acknowledgeAlert, listAlerts } from '../../app/alerts.js';
import type { AlertRecord } from '../../app/upstream-ports.js';
import type { HttpContext } from '../context.js';
import { ErrorView, NoContent } from '../schemas.js';

const AlertView = z.object({
  id: z.number().int(),
  kind: z.string().describe("what happened, e.g. 'reconciliation.mismatch', 'upload.conflict'"),
  severity: z.enum(['info', 'warning', 'critical']),
  subject: z.string().describe('what it is about: an invoice number, a date, a report id'),
  detail: z.record(z.string(), z.unknown()),
  at: z.string(),
  acknowledged_at: z.string().nullable(),
  acknowledged_by: z.string().nullable(),
});
const AlertListView = z.object({ items: z.array(AlertView), next_cursor: z.string().nullable() });
const AlertQuery = z.strictObject({
  cursor: z.string().max(20).optional(),
  kind: z.string().max(100).optional(),
  unacknowledged: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

export function alertView(a: AlertRecord): z.infer<typeof AlertView> {
  return { id: a.id, kind: a.kind, severity: a.severity, subject: a.subject, detail: a.detail, at: a.at, acknowledged_at: a.acknowledgedAt, acknowledged_by: a.acknowledgedBy };
}

export function alertRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 401: ErrorView, 403: ErrorView, 404: ErrorView, 422: ErrorView, 503: ErrorView };

  api.get('/api/v1/alerts', { schema: { summary: "The merchant's alerts (预警), newest first", tags: ['operations'], querystring: AlertQuery, response: { 200: AlertListView, ...errors } } },
    async (request) => {
      const q = request.query;
      const page = await listAlerts(ports, request.caller, { cursor: q.cursor, kind: q.kind, unacknowledged: q.unacknowledged === 'true', limit: q.limit });
      return { items: page.items.map(alertView), next_cursor: page.nextCursor };
    });

  api.post('/api/v1/alerts/:id/acknowledge', {
    schema: { summary: 'Acknowledge an alert (owner, auditor, operator)', tags: ['operations'], params: z.strictObject({ id: z.coerce.number().int().positive() }), response: { 204: NoContent, ...errors } },
  }, async (request, reply) => {
    await acknowledgeAlert(ports, request.caller, request.params.id);
    return reply.code(204).send(null);
  });
}
