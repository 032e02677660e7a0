// What the API says about itself, checked by independent tools: the OpenAPI document, the answers
// measured against it, the Prometheus metrics, health and readiness, the fault-code lookup and
// the generated docs/fault-codes.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { LightMyRequestResponse } from 'fastify';
import { MAX_LINES } from '../../src/domain/draft.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultCatalogueMarkdown, faultView } from '../../src/app/fault-lookup.js';
import { faults } from '../../src/domain/faults.js';
import type { Store } from '../../src/app/ports.js';
import { storesUnderTest } from '../support/stores.js';
import { body, sampleInvoice, startApi, type Api, type ErrorBody } from '../support/http.js';

type Operation = {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: unknown }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: Record<string, any> }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
  security?: unknown[];
};
type OpenApiDocument = { openapi: string; paths: Record<string, Record<string, Operation>>; security?: unknown[] };

const FAULT_CODES_DOC = fileURLToPath(new URL('../../docs/fault-codes.md', import.meta.url));

for (const s of storesUnderTest) {
  describe(`the API describes itself (${s.name})`, () => {
    let api: Api;
    let store: Store;
    let cleanup: () => Promise<void>;
    let document: OpenApiDocument;
    let resolved: OpenApiDocument;

    beforeAll(async () => {
      const opened = await s.open();
      ({ store, cleanup } = opened);
      api = await startApi(store);
      const response = await api.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      expect(response.statusCode).toBe(200);
      document = body(response);
    });
    afterAll(async () => {
      await api.close();
      await cleanup();
    });

    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    const operation = (path: string, method: string): Operation => {
      const found = resolved.paths[path]?.[method];
      if (!found) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
      return found;
    };
    /** Checks a real answer against the schema the document gives for its route and status. */
    const expectDocumented = (path: string, method: string, response: LightMyRequestResponse) => {
      const documented = operation(path, method).responses[String(response.statusCode)];
      expect(documented, `${method.toUpperCase()} ${path} does not document status ${response.statusCode}`).toBeDefined();
      const schema = documented!.content?.['application/json']?.schema;
      expect(schema, `no JSON schema for ${response.statusCode}`).toBeDefined();
      const validate = ajv.compile(schema!);
      const valid = validate(body(response));
      expect(valid, `${method.toUpperCase()} ${path} ${response.statusCode}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    };

    describe('OpenAPI document', () => {
      it('is valid OpenAPI 3.1 according to an independent validator', async () => {
        const validator = new Validator();
        const result = await validator.validate(structuredClone(document));
        expect(result.errors).toBeUndefined();
        expect(result.valid).toBe(true);
        expect(validator.version).toBe('3.1');
        expect(document.openapi).toMatch(/^3\.1\.\d+$/);
        resolved = validator.resolveRefs() as OpenApiDocument;
      });

      it('documents issuing with the Idempotency-Key header and the request body', () => {
        const issue = operation('/api/v1/invoices', 'post');
        const header = issue.parameters?.find((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
        expect(header).toBeDefined();
        expect(header!.required ?? false).toBe(false);

        expect(issue.requestBody?.required).toBe(true);
        const request = issue.requestBody!.content['application/json']!.schema;
        expect(request.type).toBe('object');
        expect(request.required).toEqual(expect.arrayContaining(['kind', 'buyer', 'lines']));
        expect(request.additionalProperties).toBe(false);
        expect(request.properties.kind.enum).toEqual(['normal', 'special']);
        expect(request.properties.buyer.required).toContain('name');
        const line = request.properties.lines.items;
        expect(line.required).toEqual(expect.arrayContaining(['name', 'tax_code', 'quantity', 'unit_price', 'tax_rate']));
        // Money and quantities travel as decimal strings, never as JSON numbers.
        for (const field of ['quantity', 'unit_price', 'tax_rate']) expect(line.properties[field].type, field).toBe('string');
        expect(Object.keys(issue.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403', '409', '422']));
      });

      it('states the limits the server enforces, in characters and items', () => {
        const request = operation('/api/v1/invoices', 'post').requestBody!.content['application/json']!.schema;
        expect(request.properties.buyer.properties.name.maxLength).toBe(100);
        expect(request.properties.buyer.properties.account.maxLength).toBe(50);
        expect(request.properties.remarks.maxLength).toBe(230);
        expect(request.properties.lines).toMatchObject({ minItems: 1, maxItems: MAX_LINES });
        expect(request.properties.lines.items.properties.name.maxLength).toBe(100);
        const limit = operation('/api/v1/invoices', 'get').parameters!.find((p) => p.name === 'limit')!;
        expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 200 });
      });

      it('documents the public endpoints as needing no credentials', async () => {
        expect(document.security?.length).toBeGreaterThan(0);
        for (const [path, method] of [['/healthz', 'get'], ['/readyz', 'get'], ['/metrics', 'get'], ['/api/v1/errors/{code}', 'get'], ['/api/v1/session', 'post']] as const) {
          expect(operation(path, method).security, `${method.toUpperCase()} ${path}`).toEqual([]);
          const answer = await api.inject({ method: method.toUpperCase() as 'GET', url: path.replace('{code}', '1001'), ...(method === 'post' ? { payload: { username: 'nobody', password: 'whatever-123' } } : {}) });
          // A failed login is a 401 too (2001); what must never come is "credentials required" (2003).
          const code = answer.statusCode === 401 ? answer.json().error.code : undefined;
          expect([code, path]).not.toEqual([2003, path]);
        }
      });
    });

    describe('real answers match the document', () => {
      it('a 201 from issuing matches the InvoiceView schema', async () => {
        const response = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'openapi-1' });
        expect(response.statusCode).toBe(201);
        expectDocumented('/api/v1/invoices', 'post', response);
        const replay = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'openapi-1' });
        expectDocumented('/api/v1/invoices', 'post', replay);
      });

      it('reads and voids match their documented schemas', async () => {
        const number = body(await api.issue(api.a.keys.clerk, sampleInvoice())).number;
        expectDocumented('/api/v1/invoices', 'get', await api.get(api.a.keys.clerk, '/api/v1/invoices', { limit: 1 }));
        expectDocumented('/api/v1/invoices/{number}', 'get', await api.get(api.a.keys.clerk, `/api/v1/invoices/${number}`));
        const voiding = () => api.inject({ method: 'POST', url: `/api/v1/invoices/${number}/void`, headers: { authorization: `Bearer ${api.a.keys.clerk}` }, payload: { reason: '测试' } });
        expectDocumented('/api/v1/invoices/{number}/void', 'post', await voiding());
        expectDocumented('/api/v1/invoices/{number}/void', 'post', await voiding()); // 409
      });

      it('error answers of issuing match the ErrorView schema for their status', async () => {
        const key = api.a.keys.clerk;
        const answers: LightMyRequestResponse[] = [
          await api.issue(key, sampleInvoice({ lines: [] })), // 422
          await api.issue(key, '{"kind":'), // 400
          await api.inject({ method: 'POST', url: '/api/v1/invoices', payload: sampleInvoice() }), // 401
          await api.issue(api.a.keys.auditor, sampleInvoice()), // 403
          await api.issue(key, sampleInvoice({ remarks: 'x'.repeat(2_200_000) })), // 413
          await api.issue(key, '<invoice/>', { 'content-type': 'application/xml' }), // 415
        ];
        expect(answers.map((a) => a.statusCode)).toEqual([422, 400, 401, 403, 413, 415]);
        for (const answer of answers) expectDocumented('/api/v1/invoices', 'post', answer);
      });

      it('a 404 for an unknown number and a 422 for a bad query match the ErrorView schema', async () => {
        expectDocumented('/api/v1/invoices/{number}', 'get', await api.get(api.a.keys.clerk, '/api/v1/invoices/26311000000000099999'));
        expectDocumented('/api/v1/invoices', 'get', await api.get(api.a.keys.clerk, '/api/v1/invoices', { date_from: '2026-13-01' }));
      });
    });

    describe('operations endpoints', () => {
      const metricValue = (text: string, series: string): number => {
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? 0 : Number(line.slice(series.length + 1));
      };
      const scrape = async () => {
        const response = await api.inject({ method: 'GET', url: '/metrics' });
        expect(response.statusCode).toBe(200);
        expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
        return response.body;
      };

      it('exposes request latency and issued invoices in Prometheus text format', async () => {
        const issued = 'fapiao_invoices_issued_total{kind="normal"}';
        const latency = 'fapiao_http_request_duration_seconds_count{method="POST",route="/api/v1/invoices",status="201"}';
        const refused = 'fapiao_invoice_issue_failures_total{code="1006"}';
        const before = await scrape();
        expect((await api.issue(api.a.keys.clerk, sampleInvoice())).statusCode).toBe(201);
        expect((await api.issue(api.a.keys.clerk, sampleInvoice({ lines: [] }))).statusCode).toBe(422);
        const after = await scrape();

        expect(after).toContain('# TYPE fapiao_http_request_duration_seconds histogram');
        expect(after).toContain('# TYPE fapiao_invoices_issued_total counter');
        expect(metricValue(after, issued)).toBe(metricValue(before, issued) + 1);
        expect(metricValue(after, latency)).toBe(metricValue(before, latency) + 1);
        expect(metricValue(after, refused)).toBe(metricValue(before, refused) + 1);
        expect(after).toMatch(/^fapiao_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/api\/v1\/invoices",status="201"\} \d+$/m);

        // Every sample line is "name{labels} value" in the exposition format.
        const samples = after.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
        expect(samples.length).toBeGreaterThan(0);
        for (const sample of samples) expect(sample).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|NaN|[+-]Inf)$/i); // prom-client writes NaN as "Nan", which Prometheus parses

        // And if Prometheus's own checker is installed, it agrees.
        const promtool = spawnSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' });
        if (!promtool.error) expect(promtool.status, `${promtool.stdout}${promtool.stderr}`).toBe(0);
      });

      it('answers /healthz, and /readyz with the database in use', async () => {
        const health = await api.inject({ method: 'GET', url: '/healthz' });
        expect([health.statusCode, body(health)]).toEqual([200, { status: 'ok' }]);
        const ready = await api.inject({ method: 'GET', url: '/readyz' });
        expect(ready.statusCode).toBe(200);
        expect(body(ready)).toEqual({ status: 'ready', database: store.dialect });
        expect(['sqlite', 'postgres']).toContain(body(ready).database);
        expectDocumented('/readyz', 'get', ready);
      });
    });

    describe('fault-code lookup (故障代码库)', () => {
      it('returns the catalogue entry for 1001, without credentials', async () => {
        const response = await api.inject({ method: 'GET', url: '/api/v1/errors/1001' });
        expect(response.statusCode).toBe(200);
        expect(body(response)).toEqual(faultView(faults.BUYER_TAX_ID_INVALID));
        expect(body(response)).toMatchObject({ code: 1001, http_status: 422 });
        expectDocumented('/api/v1/errors/{code}', 'get', response);
      });

      it('can look up every code of the catalogue', async () => {
        for (const spec of Object.values(faults)) {
          const response = await api.inject({ method: 'GET', url: `/api/v1/errors/${spec.code}` });
          expect(body(response), String(spec.code)).toEqual(faultView(spec));
        }
        const all = body(await api.inject({ method: 'GET', url: '/api/v1/errors' })).items.map((f: { code: number }) => f.code);
        expect(all).toEqual(Object.values(faults).map((f) => f.code));
        expect(new Set(all).size).toBe(all.length);
      });

      it.each([['9999'], ['99'], ['abc'], ['10011'], ['0'], ['1e3']])('answers 404 with code 1023 (unknown fault code, not "no such endpoint") for the code %s', async (code) => {
        const response = await api.inject({ method: 'GET', url: `/api/v1/errors/${code}` });
        expect(response.statusCode).toBe(404);
        const { error } = body<ErrorBody>(response);
        expect(error.code).toBe(1023);
        expect(error.message_en).toContain(code);
        expect(error.remedy_en).toContain('/api/v1/errors');
        expect(error.details).toEqual([{ field: 'code', issue: expect.any(String) }]);
        expectDocumented('/api/v1/errors/{code}', 'get', response);
      });

      it.each([
        ['GET', '/api/v1/nothing'],
        ['POST', '/api/v2/invoices'],
        ['DELETE', '/api/v1/invoices'],
        ['GET', '/'],
      ] as const)('answers %s %s, an unknown route, with 404 and code 1000 naming it', async (method, url) => {
        const response = await api.inject({ method, url: `${url}?secret=do-not-echo` });
        expect(response.statusCode).toBe(404);
        const { error } = body<ErrorBody>(response);
        expect(error.code).toBe(1000);
        expect(error.message_en).toContain(`${method} ${url}`);
        expect(error.message_en).not.toContain('do-not-echo');
        expect(error.request_id).toBeTruthy();
      });

      it('keeps docs/fault-codes.md equal to the catalogue (npm run docs:faults regenerates it)', () => {
        expect(existsSync(FAULT_CODES_DOC), 'docs/fault-codes.md is missing: run npm run docs:faults').toBe(true);
        expect(readFileSync(FAULT_CODES_DOC, 'utf8')).toBe(faultCatalogueMarkdown());
      });
    });
  });
}
