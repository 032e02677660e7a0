// The sandbox tax service (沙箱税务服务) as a Fastify plugin: mounted at /sandbox on Fapiao's own
// server when no real tax service is configured, or served alone by `fapiao simulator`. It speaks
// the protocol of docs/tax-service-protocol.md, checks request signatures, and misbehaves on
// purpose when a fault is set (faults.ts). Every answer says it comes from a sandbox.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseCalendarDate } from '../../domain/time.js';
import { checkSignature, presentedSignature } from '../signing.js';
import { openSandboxDb, type SandboxDb } from './db.js';
import { FAULT_MODES, FaultBoard, isFaultMode, type FaultSetting } from './faults.js';
import { Ledger, SandboxError, type WireTerms } from './ledger.js';

export interface SandboxOptions {
  /** The sandbox's SQLite file (created if missing). */
  dbFile: string;
  /** Anyone may enrol a seller and get a signing key (POST /v1/enroll). Default true. */
  openEnrollment?: boolean;
  /** When set, the /admin endpoints need the header x-sandbox-admin-token with this value. */
  adminToken?: string;
}

export const SANDBOX_HEADER = 'x-tax-service';
const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    sandboxRawBody?: string;
  }
}

interface SandboxState {
  closing: boolean;
  db: SandboxDb;
  faults: FaultBoard;
  ledger: Ledger;
}

/** Register with a prefix: `app.register(sandboxPlugin({ dbFile }), { prefix: '/sandbox' })`. */
export function sandboxPlugin(options: SandboxOptions) {
  return async function sandbox(app: FastifyInstance): Promise<void> {
    const db = openSandboxDb(options.dbFile);
    const faults = new FaultBoard(db);
    const state: SandboxState = { db, faults, ledger: new Ledger(db, faults), closing: false };
    app.addHook('onClose', async () => db.close());
    // Held requests (hang, slow) let go when the server closes, so they never hold up its shutdown.
    app.addHook('preClose', async () => {
      state.closing = true;
    });

    // The signature covers the body's exact bytes, so keep them as they came.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_UPLOAD_BYTES }, (request, text, done) => {
      request.sandboxRawBody = text as string;
      try {
        done(null, text === '' ? {} : JSON.parse(text as string));
      } catch {
        done(new SandboxError(400, 'BAD_REQUEST', 'the body is not valid JSON'));
      }
    });
    app.setErrorHandler((error, _request, reply) => {
      if (error instanceof SandboxError) return sendError(reply, error);
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 413) return sendError(reply, new SandboxError(413, 'BATCH_TOO_LARGE', 'the body is too large'));
      if (status && status >= 400 && status < 500) return sendError(reply, new SandboxError(400, 'BAD_REQUEST', (error as Error).message));
      reply.log.error({ err: error }, 'sandbox tax service failed');
      return sendError(reply, new SandboxError(500, 'SERVER_ERROR', 'the sandbox failed'));
    });
    app.setNotFoundHandler((request, reply) => sendError(reply, new SandboxError(404, 'NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`)));
    app.addHook('onSend', async (_request, reply) => {
      reply.header(SANDBOX_HEADER, 'sandbox');
    });

    protocolRoutes(app, state, options);
    adminRoutes(app, state, options);
  };
}

// Outside the main API: no Fapiao login, no Fapiao rate limit, not in Fapiao's OpenAPI document.
const routeConfig = { public: true, rateLimit: false } as Record<string, unknown>;
const hidden = { hide: true };

function protocolRoutes(app: FastifyInstance, state: SandboxState, options: SandboxOptions): void {
  const { faults, ledger } = state;
  /** Waits up to `ms`, less when the server is closing or `until` says stop. */
  const hold = async (ms: number, until: () => boolean = () => false) => {
    const end = Date.now() + ms;
    while (Date.now() < end && !state.closing && !until()) await sleep(Math.min(50, end - Date.now()));
  };
  // Faults that strike before anything is read or decided.
  const strikeEarly = async (request: FastifyRequest, reply: FastifyReply) => {
    if (faults.hits('down')) return cut(request, reply);
    if (faults.hits('hang')) {
      await hold(Number.POSITIVE_INFINITY, () => request.raw.socket.destroyed || !faults.active('hang'));
      return cut(request, reply);
    }
    if (faults.hits('error')) throw new SandboxError(500, 'INJECTED_ERROR', 'internal error (sandbox fault "error"); nothing was processed');
    if (faults.hits('garbage')) {
      reply.hijack();
      request.raw.socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\ncontent-length: 37\r\n\r\n<html><body>Bad gateway</body></html>');
    }
  };
  /** The answer is computed (and committed) — and then, under lose_response, never arrives. */
  const answer = async (request: FastifyRequest, reply: FastifyReply, status: number, body: object) => {
    // Slow answers: processed (and committed) at once, answered late — so a client that gives up
    // waiting does not know that its request went through.
    const slow = faults.hits('slow');
    if (slow) await hold(slow.delayMs ?? 2000);
    if (faults.hits('lose_response')) return cut(request, reply);
    return reply.code(status).send({ ...body, sandbox: true });
  };
  const signed = async (request: FastifyRequest<{ Params: { seller: string } }>) => {
    const presented = presentedSignature(request.headers);
    if (!presented) throw new SandboxError(401, 'SIGNATURE_MISSING', 'x-fapiao-key, x-fapiao-timestamp, x-fapiao-nonce and x-fapiao-signature are required');
    const key = ledger.key(presented.keyId);
    if (!key) throw new SandboxError(401, 'KEY_UNKNOWN', `unknown key ${presented.keyId}`);
    if (key.seller !== request.params.seller) throw new SandboxError(403, 'KEY_NOT_FOR_SELLER', `key ${presented.keyId} does not belong to seller ${request.params.seller}`);
    const problem = checkSignature(presented, key.secret, { method: request.method, path: request.url, body: request.sandboxRawBody ?? '' });
    if (problem === 'TIMESTAMP_SKEW') throw new SandboxError(401, problem, 'the timestamp is more than 5 minutes from the tax service\'s clock');
    if (problem) throw new SandboxError(401, problem, 'the signature does not match the request');
    if (!ledger.useNonce(presented.keyId, presented.nonce)) throw new SandboxError(401, 'NONCE_REUSED', 'this nonce was used before (a replayed request)');
  };
  const protocol = { config: routeConfig, schema: hidden, onRequest: strikeEarly };
  type Seller = { Params: { seller: string } };

  app.post<{ Body: { seller_tax_id?: unknown } }>('/v1/enroll', protocol, async (request, reply) => {
    if (options.openEnrollment === false) throw new SandboxError(403, 'ENROLLMENT_CLOSED', 'enrolment is closed; ask the operator for a key');
    const seller = request.body?.seller_tax_id;
    if (typeof seller !== 'string' || !/^[0-9A-Z]{15,20}$/.test(seller)) throw new SandboxError(400, 'BAD_REQUEST', 'seller_tax_id: the taxpayer ID (15-20 digits or capitals)');
    const { keyId, secret } = ledger.enroll(seller);
    return answer(request, reply, 201, { seller_tax_id: seller, key_id: keyId, secret });
  });

  app.post<Seller & { Body: { request_id?: unknown; year?: unknown; size?: unknown } }>('/v1/sellers/:seller/blocks', { ...protocol, preHandler: signed }, async (request, reply) => {
    const { request_id, year, size } = request.body ?? {};
    if (typeof request_id !== 'string') throw new SandboxError(400, 'BAD_REQUEST', 'request_id: a string');
    return answer(request, reply, 200, ledger.allocate(request.params.seller, request_id, Number(year), Number(size)));
  });

  app.post<Seller & { Body: { records?: unknown } }>('/v1/sellers/:seller/uploads', { ...protocol, bodyLimit: MAX_UPLOAD_BYTES, preHandler: signed }, async (request, reply) =>
    answer(request, reply, 200, ledger.upload(request.params.seller, request.body?.records)));

  app.get<Seller & { Params: { number: string } }>('/v1/sellers/:seller/invoices/:number', { ...protocol, preHandler: signed }, async (request, reply) =>
    answer(request, reply, 200, ledger.status(request.params.seller, request.params.number)));

  app.post<Seller & { Body: { numbers?: unknown } }>('/v1/sellers/:seller/statuses', { ...protocol, preHandler: signed }, async (request, reply) =>
    answer(request, reply, 200, { invoices: ledger.statuses(request.params.seller, request.body?.numbers) }));

  app.post<Seller & { Params: { number: string }; Body: { reason?: unknown; voided_at?: unknown } }>('/v1/sellers/:seller/invoices/:number/void', { ...protocol, preHandler: signed }, async (request, reply) =>
    answer(request, reply, 200, ledger.voidInvoice(request.params.seller, request.params.number, request.body)));

  app.get<Seller & { Querystring: { date?: string; cursor?: string } }>('/v1/sellers/:seller/accepted', { ...protocol, preHandler: signed }, async (request, reply) => {
    const date = parseCalendarDate(request.query.date ?? '');
    if (!date) throw new SandboxError(400, 'BAD_REQUEST', 'date: YYYY-MM-DD');
    return answer(request, reply, 200, ledger.acceptedOn(request.params.seller, date, request.query.cursor));
  });

  app.get<Seller>('/v1/sellers/:seller/terms', { ...protocol, preHandler: signed }, async (request, reply) =>
    answer(request, reply, 200, ledger.terms(request.params.seller)));
}

function adminRoutes(app: FastifyInstance, { faults, ledger }: SandboxState, options: SandboxOptions): void {
  const guard = async (request: FastifyRequest) => {
    if (options.adminToken && request.headers['x-sandbox-admin-token'] !== options.adminToken) throw new SandboxError(401, 'ADMIN_TOKEN_REQUIRED', 'x-sandbox-admin-token is missing or wrong');
  };
  const admin = { config: routeConfig, schema: hidden, onRequest: guard };
  const faultList = () => ({ sandbox: true, faults: faults.list().map((f) => ({ ...f, description: FAULT_MODES[f.mode] })) });

  app.get('/admin/faults', admin, async () => faultList());

  app.put<{ Params: { mode: string }; Body: Record<string, unknown> }>('/admin/faults/:mode', admin, async (request) => {
    faults.set(faultSetting(request.params.mode, request.body ?? {}));
    return faultList();
  });

  app.delete<{ Params: { mode: string } }>('/admin/faults/:mode', admin, async (request) => {
    if (!isFaultMode(request.params.mode)) throw new SandboxError(400, 'FAULT_INVALID', `unknown fault mode ${request.params.mode}`);
    faults.clear(request.params.mode);
    return faultList();
  });

  app.delete('/admin/faults', admin, async () => {
    faults.clear();
    return faultList();
  });

  app.get<{ Querystring: { seller?: string; number?: string } }>('/admin/uploads', admin, async (request) => {
    const items = ledger.counters({ seller: request.query.seller, number: request.query.number });
    const keys = ['submissions', 'accepted', 'duplicates', 'conflicts', 'rejections', 'failed', 'echoes', 'void_requests', 'voids', 'void_refusals'] as const;
    return { sandbox: true, items, totals: { numbers: items.length, ...Object.fromEntries(keys.map((key) => [key, items.reduce((sum, i) => sum + i[key], 0)])) } };
  });

  app.get<{ Params: { seller: string } }>('/admin/terms/:seller', admin, async (request) => ({ sandbox: true, ...ledger.terms(request.params.seller) }));

  app.put<{ Params: { seller: string }; Body: unknown }>('/admin/terms/:seller', admin, async (request) => {
    ledger.setTerms(request.params.seller, wireTerms(request.body));
    return { sandbox: true, ...ledger.terms(request.params.seller) };
  });

  app.get('/admin/info', admin, async () => ({ sandbox: true, service: 'Fapiao sandbox tax service (沙箱税务服务)', fault_modes: FAULT_MODES, open_enrollment: options.openEnrollment !== false }));
}

/** Validates a fault setting from the admin API. */
export function faultSetting(mode: string, body: Record<string, unknown>, now = Date.now()): FaultSetting {
  if (!isFaultMode(mode)) throw new SandboxError(400, 'FAULT_INVALID', `unknown fault mode "${mode}"; one of ${Object.keys(FAULT_MODES).join(', ')}`);
  const number = (name: string, ok: (n: number) => boolean) => {
    const value = body[name];
    if (value === undefined || value === null) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || !ok(n)) throw new SandboxError(400, 'FAULT_INVALID', `${name}: out of range`);
    return n;
  };
  const rate = number('rate', (n) => n >= 0 && n <= 1) ?? 1;
  const seconds = number('seconds', (n) => n > 0);
  const delayMs = number('delay_ms', (n) => n >= 0 && n <= 600_000);
  const waitSeconds = number('wait_seconds', (n) => Number.isInteger(n) && n >= 0 && n <= 3600);
  const kind = body.kind;
  const minAmountFen = body.min_amount_fen;
  if (minAmountFen !== undefined && !(typeof minAmountFen === 'string' && /^\d{1,18}$/.test(minAmountFen))) throw new SandboxError(400, 'FAULT_INVALID', 'min_amount_fen: fen as a decimal string');
  if (kind !== undefined && kind !== 'normal' && kind !== 'special') throw new SandboxError(400, 'FAULT_INVALID', 'kind: normal or special');
  return {
    mode, rate, until: seconds === undefined ? null : now + seconds * 1000,
    ...(delayMs !== undefined && { delayMs }), ...(waitSeconds !== undefined && { waitSeconds }), ...(kind !== undefined && { kind: kind as 'normal' | 'special' }), ...(minAmountFen !== undefined && { minAmountFen: minAmountFen as string }),
  };
}

function wireTerms(body: unknown): WireTerms {
  const b = body as Partial<WireTerms> | undefined;
  const fen = (v: unknown) => typeof v === 'string' && /^\d{1,18}$/.test(v);
  if (!b || (b.monthly_credit_fen !== null && !fen(b.monthly_credit_fen)) || !Array.isArray(b.contingency)) {
    throw new SandboxError(400, 'BAD_REQUEST', 'terms: { monthly_credit_fen: "fen" | null, contingency: [{ kind, max_offline_hours, max_offline_amount_fen }] }');
  }
  for (const c of b.contingency) {
    if ((c?.kind !== 'normal' && c?.kind !== 'special') || !(Number(c.max_offline_hours) > 0) || !fen(c.max_offline_amount_fen)) {
      throw new SandboxError(400, 'BAD_REQUEST', 'contingency: kind normal|special, max_offline_hours > 0, max_offline_amount_fen as a fen string');
    }
  }
  return { monthly_credit_fen: b.monthly_credit_fen ?? null, contingency: b.contingency.map((c) => ({ kind: c.kind, max_offline_hours: Number(c.max_offline_hours), max_offline_amount_fen: c.max_offline_amount_fen })) };
}

function sendError(reply: FastifyReply, error: SandboxError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.code(error.status).type('application/json; charset=utf-8').send({ error: { code: error.code, message: error.message, ...(error.retryAfterSeconds !== undefined && { wait_seconds: error.retryAfterSeconds }) }, sandbox: true });
}

/** Resets the connection: the client sees it refused or lost, never an answer. */
function cut(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.hijack();
  request.raw.socket.destroy();
  return reply;
}
