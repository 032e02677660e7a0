// The one place where errors become HTTP answers. A Fault becomes the catalogue's error shape;
// Fastify's own errors are translated to their catalogue entries; anything else is 9001 with the
// stack in the log and never in the answer.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { ZodType, core } from 'zod';
import { bilingual, Fault, faults, inLanguage, withOriginal, type Bilingual, type FieldIssue } from '../domain/faults.js';
import { zodReason } from './zod-reasons.js';

export function errorBody(fault: Fault, requestId: string) {
  return {
    error: {
      code: fault.spec.code,
      message: fault.messageIn('zh'),
      message_en: fault.messageIn('en'),
      remedy: fault.spec.remedy,
      remedy_en: fault.spec.remedyEn,
      // A fault that names a field always says which, even when the thrower gave no details.
      details: fault.details.length > 0 || fault.params.field === undefined ? fault.details : [{ field: inLanguage(fault.params.field, 'en'), issue: fault.message }],
      request_id: requestId,
    },
  };
}

export function sendFault(reply: FastifyReply, fault: Fault): FastifyReply {
  if (fault.retryAfterSeconds !== undefined) reply.header('retry-after', String(fault.retryAfterSeconds));
  return reply.code(fault.spec.http).type('application/json; charset=utf-8').send(errorBody(fault, String(reply.request.id)));
}

export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const fault = toFault(error, request);
  if (fault.spec.code === faults.INTERNAL.code) request.log.error({ err: error }, 'internal error');
  else request.log.info({ code: fault.spec.code }, fault.message);
  return sendFault(reply, fault);
}

/** Carries a validation fault through Fastify, which stamps its own fields onto validation errors. */
export class RequestRejected extends Error {
  constructor(readonly fault: Fault) {
    super(fault.message);
  }
}

function toFault(error: FastifyError | Error, request: FastifyRequest): Fault {
  if (error instanceof Fault) return error;
  if (error instanceof RequestRejected) return error.fault;
  const code = (error as FastifyError).code;
  const status = (error as FastifyError).statusCode;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Fault(faults.BODY_TOO_LARGE, { limit: String(request.routeOptions.bodyLimit ?? '') }, [{ field: 'body', issue: 'too large' }]);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Fault(faults.CONTENT_TYPE_UNSUPPORTED, { type: String(request.headers['content-type'] ?? '') }, [{ field: 'content-type', issue: 'not application/json' }]);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return malformed(bilingual('请求体为空', 'the body is empty'));
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return malformed(bilingual('Content-Length 与请求体长度不符', 'Content-Length does not match the body'));
  }
  if (error instanceof SyntaxError || (status === 400 && /JSON|prototype/i.test(error.message))) {
    return malformed(withOriginal('JSON 语法错误', error.message.slice(0, 200)));
  }
  return new Fault(faults.INTERNAL, { requestId: String(request.id) });
}

function malformed(reason: Bilingual): Fault {
  return new Fault(faults.REQUEST_MALFORMED, { reason }, [{ field: 'body', issue: reason.en }]);
}

/** Validates with zod and refuses with a fault that names the first wrong field (all of them in details). */
export const zodValidatorCompiler: FastifySchemaCompiler<ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const nul = findNul(data, '');
    if (nul !== undefined) {
      const field = nul || httpPart || 'body';
      return { error: new RequestRejected(new Fault(faults.TEXT_INVALID, { field, reason: bilingual('含有空字符（U+0000）', 'NUL character (U+0000)') }, [{ field, issue: 'NUL character' }])) };
    }
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    return { error: new RequestRejected(issuesToFault(result.error.issues, data, httpPart)) };
  };

/** No text anywhere may carry U+0000: PostgreSQL cannot store it and no invoice needs it. */
function findNul(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (key.includes('\u0000')) return path;
    const found = findNul(inner, Array.isArray(value) ? `${path}[${key}]` : joinField(path, key));
    if (found !== undefined) return found;
  }
  return undefined;
}

function issuesToFault(issues: readonly core.$ZodIssue[], data: unknown, httpPart: string | undefined): Fault {
  const details: FieldIssue[] = [];
  const faultsFound: Fault[] = [];
  for (const issue of issues) {
    const base = fieldName(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = joinField(base, key);
        details.push({ field, issue: 'unknown field' });
        faultsFound.push(new Fault(faults.FIELD_UNKNOWN, { field }));
      }
      continue;
    }
    const field = base || httpPart || 'body';
    if (valueAt(data, issue.path) === undefined) {
      details.push({ field, issue: 'missing' });
      faultsFound.push(new Fault(faults.FIELD_MISSING, { field }));
      continue;
    }
    details.push({ field, issue: issue.message });
    faultsFound.push(new Fault(httpPart === 'querystring' ? faults.QUERY_INVALID : faults.FIELD_INVALID, { field, reason: zodReason(issue) }));
  }
  const first = faultsFound[0] ?? new Fault(faults.FIELD_INVALID, { field: httpPart ?? 'body', reason: bilingual('值无效', 'invalid') });
  return new Fault(first.spec, first.params, details);
}

function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((name, key) => (typeof key === 'number' ? `${name}[${key}]` : joinField(name, String(key))), '');
}

function joinField(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Fastify's own refusals of a request it could not route (a bad % escape, an overlong path segment). */
export function handleFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const reason =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? bilingual('路径中有一段过长', 'a path segment is too long') : bilingual('URL 中有无效的 % 转义', 'the URL has an invalid % escape');
  return sendFault(reply, new Fault(faults.URL_MALFORMED, { reason }));
}

/**
 * What Node's HTTP parser refuses never reaches Fastify: headers too large, a request too slow,
 * bytes that are not HTTP. The answer still has the one error shape, and the connection closes.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex, requestTimeoutSeconds: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return; // the client is gone: nobody to answer
  const fault =
    error.code === 'HPE_HEADER_OVERFLOW' ? new Fault(faults.HEADERS_TOO_LARGE)
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new Fault(faults.REQUEST_TIMEOUT, { seconds: String(requestTimeoutSeconds) })
    : new Fault(faults.URL_MALFORMED, { reason: bilingual('不是有效的 HTTP 请求', 'not a valid HTTP request') });
  if (socket.writable) {
    const body = JSON.stringify(errorBody(fault, randomUUID()));
    socket.write(
      `HTTP/1.1 ${fault.spec.http} ${STATUS_CODES[fault.spec.http]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

