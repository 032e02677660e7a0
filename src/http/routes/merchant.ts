import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { authorize } from '../../domain/access.js';
import { Fault, faults } from '../../domain/faults.js';
import { addUser } from '../../app/users.js';
import type { HttpContext } from '../context.js';
import { ErrorView, MerchantView, UserRequest, UserView } from '../schemas.js';
import { merchantView } from '../views.js';

export function merchantRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 401: ErrorView, 403: ErrorView, 409: ErrorView, 422: ErrorView, 503: ErrorView };

  api.get('/api/v1/merchant', { schema: { summary: "The caller's merchant (seller details and limits)", tags: ['access'], response: { 200: MerchantView, ...errors } } },
    async (request) => {
      authorize(request.caller, 'merchant.read');
      const merchant = await ports.store.read.merchants.get(request.caller.merchantId);
      if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: request.caller.merchantId });
      return merchantView(merchant);
    });

  api.post('/api/v1/users', { schema: { summary: "Add a user to the caller's merchant (owner only)", tags: ['access'], body: UserRequest, response: { 201: UserView, ...errors } } },
    async (request, reply) => {
      authorize(request.caller, 'users.manage');
      const user = await addUser(ports, { ...request.body, merchantId: request.caller.merchantId, actor: request.caller.actor });
      return reply.code(201).send({ id: user.id, username: user.username, role: user.role, merchant_id: user.merchantId });
    });
}
