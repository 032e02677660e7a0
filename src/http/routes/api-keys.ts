import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { authorize } from '../../domain/access.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../../app/api-keys.js';
import type { HttpContext } from '../context.js';
import { ApiKeyCreatedView, ApiKeyListView, ApiKeyRequest, ErrorView, IdParams, NoContent } from '../schemas.js';

export function apiKeyRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 401: ErrorView, 403: ErrorView, 404: ErrorView, 422: ErrorView };

  api.post('/api/v1/api-keys', {
    schema: { summary: 'Create an API key for a POS/ERP system (shown once)', tags: ['access'], body: ApiKeyRequest, response: { 201: ApiKeyCreatedView, ...errors } },
  }, async (request, reply) => {
    authorize(request.caller, 'apikeys.manage');
    const { key, record } = await createApiKey(ports, { merchantId: request.caller.merchantId, role: request.body.role, label: request.body.label, actor: request.caller.actor });
    return reply.code(201).send({ key, id: record.id, role: record.role, label: record.label, created_at: record.createdAt });
  });

  api.get('/api/v1/api-keys', { schema: { summary: 'List API keys (never their secrets)', tags: ['access'], response: { 200: ApiKeyListView, ...errors } } }, async (request) => {
    const keys = await listApiKeys(ports, request.caller);
    return { items: keys.map((k) => ({ id: k.id, role: k.role, label: k.label, created_at: k.createdAt, revoked_at: k.revokedAt })) };
  });

  api.delete('/api/v1/api-keys/:id', {
    schema: { summary: 'Revoke an API key', tags: ['access'], params: IdParams, response: { 204: NoContent, ...errors } },
  }, async (request, reply) => {
    await revokeApiKey(ports, request.caller, request.params.id);
    return reply.code(204).send(null);
  });
}
