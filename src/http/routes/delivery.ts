// Delivery (推送, R11): webhook endpoints, the delivery log with every attempt, manual redelivery,
// email of an invoice on request, and the merchant's delivery settings.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  createWebhookEndpoint, deleteWebhookEndpoint, emailInvoice, getDelivery, getDeliverySettings, listDeliveries, listWebhookEndpoints,
  redeliver, sendTestWebhook, setDeliverySettings, updateWebhookEndpoint,
} from '../../app/deliveries.js';
import type { WebhookEndpointRecord } from '../../app/delivery-ports.js';
import { deliveryStates, webhookEvents, type Delivery, type DeliveryAttempt } from '../../domain/delivery.js';
import { Fault, faults } from '../../domain/faults.js';
import { NOT_A_CURSOR } from '../../domain/reasons.js';
import type { HttpContext } from '../context.js';
import { ErrorView, IdParams, NoContent, NumberParams } from '../schemas.js';

const EndpointRequest = z.strictObject({
  url: z.string().max(2000).describe('absolute http(s) URL of the receiver'),
  events: z.array(z.enum(webhookEvents)).min(1).max(10).optional().describe('default: ["invoice.issued"]'),
  description: z.string().max(200).optional(),
  enabled: z.boolean().optional(),
});
const EndpointPatch = EndpointRequest.partial();

const EndpointView = z.object({
  id: z.string(), url: z.string(), events: z.array(z.string()), enabled: z.boolean(), description: z.string(), created_at: z.string(),
  secret_hint: z.string().describe('the last four characters of the signing secret'),
});
const EndpointCreatedView = EndpointView.extend({ secret: z.string().describe('HMAC-SHA256 key for Fapiao-Signature; shown only now') });

const DeliveryView = z.object({
  id: z.string().describe('also sent as Fapiao-Delivery-Id; the same on every retry and redelivery'),
  channel: z.enum(['webhook', 'email']), event: z.string(), subject: z.string(), recipient: z.string(), endpoint_id: z.string().nullable(),
  state: z.enum(deliveryStates), attempts: z.number().int(), next_attempt_at: z.string().nullable(), last_error: z.string().nullable(),
  created_at: z.string(), delivered_at: z.string().nullable(), redeliveries: z.number().int(),
});
const AttemptView = z.object({ at: z.string(), outcome: z.enum(['delivered', 'failed']), status_code: z.number().int().nullable(), duration_ms: z.number().int(), error: z.string().nullable() });
const DeliveryDetailView = DeliveryView.extend({ attempts_log: z.array(AttemptView) });
const DeliveryQuery = z.strictObject({
  channel: z.enum(['webhook', 'email']).optional(),
  state: z.enum(deliveryStates).optional(),
  subject: z.string().max(40).optional().describe('an invoice number'),
  endpoint_id: z.string().max(64).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});
const EmailRequest = z.strictObject({ to: z.string().max(254).optional().describe("default: the buyer's address on the invoice") });
const SettingsView = z.object({ email_buyer: z.boolean().describe('email every issued invoice to the buyer when it has an address') });

const endpointView = (e: WebhookEndpointRecord) => ({
  id: e.id, url: e.url, events: e.events, enabled: e.enabled, description: e.description, created_at: e.createdAt, secret_hint: e.secret.slice(-4),
});

export const deliveryView = (d: Delivery) => ({
  id: d.id, channel: d.channel, event: d.event, subject: d.subject, recipient: d.recipient, endpoint_id: d.endpointId, state: d.state,
  attempts: d.attempts, next_attempt_at: d.state === 'pending' ? d.nextAttemptAt : null, last_error: d.lastError, created_at: d.createdAt,
  delivered_at: d.deliveredAt, redeliveries: d.redeliveries,
});

const attemptView = (a: DeliveryAttempt) => ({ at: a.at, outcome: a.outcome, status_code: a.statusCode, duration_ms: a.durationMs, error: a.error });

function encodeCursor(d: Delivery): string {
  return Buffer.from(`${d.createdAt}|${d.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const match = /^([\d\-T:.+]{10,40})\|([\w]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new Fault(faults.QUERY_INVALID, { field: 'cursor', reason: NOT_A_CURSOR });
  return { createdAt: match[1]!, id: match[2]! };
}

export function deliveryRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorView, 401: ErrorView, 403: ErrorView, 404: ErrorView, 409: ErrorView, 422: ErrorView, 429: ErrorView, 503: ErrorView };
  const tags = ['delivery'];

  api.get('/api/v1/webhooks', { schema: { summary: 'Webhook endpoints (never their secrets)', tags, response: { 200: z.object({ items: z.array(EndpointView) }), ...errors } } },
    async (request) => ({ items: (await listWebhookEndpoints(ports, request.caller)).map(endpointView) }));

  api.post('/api/v1/webhooks', {
    schema: { summary: 'Add a webhook endpoint; the signing secret is shown once', tags, body: EndpointRequest, response: { 201: EndpointCreatedView, ...errors } },
  }, async (request, reply) => {
    const endpoint = await createWebhookEndpoint(ports, request.caller, request.body);
    return reply.code(201).send({ ...endpointView(endpoint), secret: endpoint.secret });
  });

  api.patch('/api/v1/webhooks/:id', {
    schema: { summary: 'Change a webhook endpoint (URL, events, enabled)', tags, params: IdParams, body: EndpointPatch, response: { 200: EndpointView, ...errors } },
  }, async (request) => endpointView(await updateWebhookEndpoint(ports, request.caller, request.params.id, request.body)));

  api.delete('/api/v1/webhooks/:id', { schema: { summary: 'Remove a webhook endpoint', tags, params: IdParams, response: { 204: NoContent, ...errors } } },
    async (request, reply) => {
      await deleteWebhookEndpoint(ports, request.caller, request.params.id);
      return reply.code(204).send(null);
    });

  api.post('/api/v1/webhooks/:id/test', {
    schema: { summary: 'Send a webhook.test event to the endpoint', tags, params: IdParams, response: { 202: DeliveryView, ...errors } },
  }, async (request, reply) => reply.code(202).send(deliveryView(await sendTestWebhook(ports, request.caller, request.params.id))));

  api.get('/api/v1/deliveries', {
    schema: { summary: 'The delivery log (webhooks and email), newest first', tags, querystring: DeliveryQuery, response: { 200: z.object({ items: z.array(DeliveryView), next_cursor: z.string().nullable() }), ...errors } },
  }, async (request) => {
    const q = request.query;
    const limit = q.limit ?? 50;
    const rows = await listDeliveries(ports, request.caller, {
      channel: q.channel, state: q.state, subject: q.subject, endpointId: q.endpoint_id, limit: limit + 1, ...(q.cursor && { before: decodeCursor(q.cursor) }),
    });
    const items = rows.slice(0, limit);
    return { items: items.map(deliveryView), next_cursor: rows.length > limit ? encodeCursor(items.at(-1)!) : null };
  });

  api.get('/api/v1/deliveries/:id', {
    schema: { summary: 'One delivery with every attempt (status code, duration, error)', tags, params: IdParams, response: { 200: DeliveryDetailView, ...errors } },
  }, async (request) => {
    const { delivery, attempts } = await getDelivery(ports, request.caller, request.params.id);
    return { ...deliveryView(delivery), attempts_log: attempts.map(attemptView) };
  });

  api.post('/api/v1/deliveries/:id/redeliver', {
    schema: { summary: 'Send a delivered or failed delivery again (same delivery id)', tags, params: IdParams, response: { 202: DeliveryView, ...errors } },
  }, async (request, reply) => reply.code(202).send(deliveryView(await redeliver(ports, request.caller, request.params.id))));

  api.post('/api/v1/invoices/:number/email', {
    schema: { summary: 'Email the invoice PDF to the buyer (or to `to`)', tags, params: NumberParams, body: EmailRequest.optional(), response: { 202: DeliveryView, ...errors } },
  }, async (request, reply) => reply.code(202).send(deliveryView(await emailInvoice(ports, request.caller, request.params.number, request.body?.to))));

  api.get('/api/v1/delivery-settings', { schema: { summary: 'Delivery settings of the merchant', tags, response: { 200: SettingsView, ...errors } } },
    async (request) => ({ email_buyer: (await getDeliverySettings(ports, request.caller)).emailBuyer }));

  api.put('/api/v1/delivery-settings', {
    schema: { summary: 'Change the delivery settings', tags, body: z.strictObject({ email_buyer: z.boolean() }), response: { 200: SettingsView, ...errors } },
  }, async (request) => ({ email_buyer: (await setDeliverySettings(ports, request.caller, { emailBuyer: request.body.email_buyer })).emailBuyer }));
}
