import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { faults } from '../../domain/faults.js';
import type { HttpContext } from '../context.js';
import { ErrorView, FaultView, ReadyView } from '../schemas.js';
import { faultView, lookUpFault } from '../../app/fault-lookup.js';

export function opsRoutes(app: FastifyInstance, { ports, metrics }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const open = { public: true };

  api.get('/healthz', { config: open, schema: { summary: 'The process is alive', tags: ['operations'] } }, async () => ({ status: 'ok' }));

  api.get('/readyz', { config: open, schema: { summary: 'The database takes writes right now', tags: ['operations'], response: { 200: ReadyView, 503: ErrorView } } }, async () => {
    await ports.store.checkWritable();
    return { status: 'ready', database: ports.store.dialect };
  });

  app.get('/metrics', { config: open, schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.render();
  });

  api.get('/api/v1/errors/:code', {
    config: open,
    schema: { summary: 'Look up a fault code (故障代码库)', tags: ['errors'], params: z.strictObject({ code: z.string().max(10) }), response: { 200: FaultView, 404: ErrorView } },
  }, async (request) => faultView(lookUpFault(request.params.code)));

  api.get('/api/v1/errors', { config: open, schema: { summary: 'The whole fault-code catalogue', tags: ['errors'] } },
    async () => ({ items: Object.values(faults).map(faultView) }));
}
