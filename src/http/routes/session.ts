import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { login, logout } from '../../app/login.js';
import { SESSION_COOKIE } from '../auth.js';
import type { HttpContext } from '../context.js';
import { ErrorView, LoginRequest, LoginView, NoContent, PasswordChangeRequest } from '../schemas.js';
import { changePassword } from '../../app/users.js';

export function sessionRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/api/v1/session', {
    config: { public: true, rateLimit: { max: 30, timeWindow: 60_000 } },
    schema: {
      summary: 'Log in (登录)',
      description: 'Sets the session cookie. Wrong password (2001), locked account (2002) and server busy (7001) are distinct answers.',
      tags: ['session'],
      body: LoginRequest,
      response: { 200: LoginView, 401: ErrorView, 422: ErrorView, 423: ErrorView, 429: ErrorView, 503: ErrorView },
    },
  }, async (request, reply) => {
    const session = await login(ports, request.body);
    reply.setCookie(SESSION_COOKIE, session.token, {
      httpOnly: true, sameSite: 'strict', path: '/', secure: request.protocol === 'https', expires: new Date(session.expiresAt),
    });
    return { expires_at: session.expiresAt, user: { username: session.user.username, role: session.user.role, merchant_id: session.user.merchantId } };
  });

  api.put('/api/v1/session/password', {
    schema: {
      summary: 'Change your own password',
      tags: ['session'],
      body: PasswordChangeRequest,
      response: { 204: NoContent, 401: ErrorView, 403: ErrorView, 422: ErrorView, 503: ErrorView },
    },
  }, async (request, reply) => {
    await changePassword(ports, request.caller, request.body.current_password, request.body.new_password);
    return reply.code(204).send(null);
  });

  api.delete('/api/v1/session', {
    config: { public: true },
    schema: { summary: 'Log out', tags: ['session'] },
  }, async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) await logout(ports, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });
}
