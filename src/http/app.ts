// The Fastify application: a thin adapter over the use cases. Security from the start: secure
// headers, body size limit, per-key and per-IP rate limits, every route authenticated unless
// marked public, and one error shape.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { Fault, faults } from '../domain/faults.js';
import { createMetrics, type Metrics } from '../ops/metrics.js';
import { Admission } from './admission.js';
import { securityHeaders } from './security-headers.js';
import { registerAuthentication } from './auth.js';
import type { HttpContext } from './context.js';
import { answerClientError, handleError, handleFrameworkError, sendFault, zodValidatorCompiler } from './errors.js';
import { registerJsonBodyParser } from './json-body.js';
import { alertRoutes } from './routes/alerts.js';
import { reconciliationRoutes } from './routes/reconciliations.js';
import { statusRoutes } from './routes/status.js';
import { sandboxPlugin } from '../upstream/simulator/plugin.js';
import { SANDBOX_PREFIX } from '../upstream/setup.js';
import type { TaxService } from '../upstream/protocol.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { defaultDocumentOptions, documentRoutes, type DocumentOptions } from './routes/documents.js';
import { invoiceRoutes } from './routes/invoices.js';
import { merchantRoutes } from './routes/merchant.js';
import { opsRoutes } from './routes/ops.js';
import { savedRoutes } from './routes/saved.js';
import { sessionRoutes } from './routes/session.js';
import { deliveryRoutes } from './routes/delivery.js';
import { exportRoutes } from './routes/export.js';
import { printingRoutes } from './routes/printing.js';

export interface HttpOptions {
  /** Requests per minute for one API key or session, and for one IP address without either. */
  rateLimitPerKey: number;
  rateLimitPerIp: number;
  /** Issue requests in flight before the server answers 7001 busy. */
  maxIssuesInFlight: number;
  bodyLimitBytes: number;
  /** Mount the sandbox tax service at /sandbox with its database in this file (only when no real tax service is configured). */
  sandbox?: { dbFile: string; adminToken?: string };
  /** The tax service, for reconciliation (对账) from the API; without it those routes answer 4008. */
  taxService?: TaxService;
  /** The circuit breaker's state of the client that uploads, when this process uploads (status shows it). */
  uploadCircuit?: () => string;
  /** PDFs and public verification: QR base URL, PDF cache directory, per-IP verification limit. */
  documents: DocumentOptions;
  logger: boolean | { level: string; stream?: NodeJS.WritableStream };
}

/** A request must have arrived whole within this long; a stalled client is answered 1042 (408). */
const REQUEST_TIMEOUT_MS = 30_000;

export const defaultHttpOptions: HttpOptions = {
  rateLimitPerKey: 60_000,
  rateLimitPerIp: 6_000,
  maxIssuesInFlight: 2_000,
  bodyLimitBytes: 2 * 1024 * 1024,
  documents: defaultDocumentOptions,
  logger: { level: 'info' },
};

export async function buildApp(ports: HttpContext['ports'], options: Partial<HttpOptions> = {}, metrics: Metrics = createMetrics()): Promise<FastifyInstance> {
  const settings = { ...defaultHttpOptions, ...options };
  const app = Fastify({
    logger: settings.logger === false ? false : { ...(settings.logger === true ? { level: 'info' } : settings.logger), redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'] },
    bodyLimit: settings.bodyLimitBytes,
    genReqId: (request) => {
      const offered = request.headers['x-request-id'];
      return typeof offered === 'string' && /^[\w-]{8,64}$/.test(offered) ? offered : randomUUID();
    },
    requestIdHeader: false,
    return503OnClosing: true,
    connectionTimeout: 30_000,
    requestTimeout: REQUEST_TIMEOUT_MS,
    frameworkErrors: handleFrameworkError,
    clientErrorHandler: (error, socket) => answerClientError(error, socket, REQUEST_TIMEOUT_MS / 1000),
  });
  app.setValidatorCompiler(zodValidatorCompiler);
  // Responses are plain objects built by views.ts; the response schemas document them in OpenAPI.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(handleError);
  // JSON in UTF-8 only: Fastify's built-in text/plain parser would hand a string to the JSON schemas.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app);
  // Public routes need no credentials, and the OpenAPI document says so.
  app.addHook('onRoute', (route) => {
    if (route.config?.public && route.schema) route.schema = { ...route.schema, security: [] };
  });
  app.setNotFoundHandler((request, reply) => sendFault(reply, new Fault(faults.ROUTE_NOT_FOUND, { route: `${request.method} ${request.url.split('?')[0]}` })));
  const secure = securityHeaders();
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(secure);
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(cookie);
  await app.register(rateLimit, {
    max: (request) => (rateLimitKey(request).startsWith('ip:') ? settings.rateLimitPerIp : settings.rateLimitPerKey),
    timeWindow: 60_000,
    keyGenerator: rateLimitKey,
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new Fault(faults.RATE_LIMITED, { seconds: String(seconds) }, [], seconds);
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Fapiao API', version: '1.0.0', description: 'Electronic invoicing (发票). Errors share one shape; look codes up at /api/v1/errors/{code}.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'fapiao_session' } } },
      security: [{ apiKey: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const context: HttpContext = { ports, metrics, admission: new Admission(settings.maxIssuesInFlight) };
  registerAuthentication(app, ports);
  for (const routes of [opsRoutes, sessionRoutes, merchantRoutes, invoiceRoutes, savedRoutes, apiKeyRoutes, alertRoutes]) routes(app, context);
  documentRoutes(app, context, settings.documents);
  for (const routes of [printingRoutes, deliveryRoutes, exportRoutes]) routes(app, context); // printing, delivery and export (R11, R12, R21)
  reconciliationRoutes(app, context, settings.taxService);
  statusRoutes(app, context, settings.uploadCircuit);
  if (settings.sandbox) await app.register(sandboxPlugin(settings.sandbox), { prefix: SANDBOX_PREFIX });
  app.get('/api/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  return app;
}

/**
 * Rate limits count per credential, so one busy POS system cannot starve another. The limit runs
 * before anyone checks the credential, so on a public route (login, verification, health) nothing
 * checks it at all: there they count per IP address, or a made-up cookie or key with each request
 * would get a fresh allowance (unlimited password guessing from one address).
 */
function rateLimitKey(request: FastifyRequest): string {
  const credential = request.routeOptions.config.public ? undefined : bearerOrSession(request.headers.authorization, request.headers.cookie);
  return credential ?? `ip:${request.ip}`;
}

function bearerOrSession(authorization: string | undefined, cookieHeader: string | undefined): string | undefined {
  const key = authorization?.match(/^Bearer\s+(fpk_[0-9a-f]{16})_/i)?.[1];
  if (key) return `key:${key}`;
  const session = cookieHeader?.match(/fapiao_session=([\w-]{20,})/)?.[1];
  return session ? `session:${session.slice(0, 16)}` : undefined;
}
