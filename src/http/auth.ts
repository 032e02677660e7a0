// Who is calling: an API key (Authorization: Bearer) for machines, a session cookie for people.
// Routes marked `config: { public: true }` skip this.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/cookie';
import type { Caller } from '../domain/access.js';
import { Fault, faults } from '../domain/faults.js';
import { authenticateApiKey } from '../app/api-keys.js';
import { authenticateSession } from '../app/login.js';
import type { Ports } from '../app/ports.js';

export const SESSION_COOKIE = 'fapiao_session';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

export function registerAuthentication(app: FastifyInstance, ports: Ports): void {
  app.decorateRequest('caller', null as unknown as Caller);
  app.addHook('preHandler', async (request) => {
    if (request.routeOptions.config.public || !request.routeOptions.url) return;
    request.caller = await identify(ports, request);
  });
}

async function identify(ports: Ports, request: FastifyRequest): Promise<Caller> {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    if (!/^Bearer\s/i.test(authorization)) throw new Fault(faults.API_KEY_INVALID);
    return authenticateApiKey(ports, authorization);
  }
  return authenticateSession(ports, request.cookies[SESSION_COOKIE]);
}
