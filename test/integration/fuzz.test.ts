// Whatever arrives at the issue endpoint, the answer is an invoice or a catalogued refusal:
// never a 5xx, never a half-made invoice, never an error without the one error shape.
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultByCode } from '../../src/domain/faults.js';
import { InvoicePageView, InvoiceView } from '../../src/http/schemas.js';
import { storesUnderTest } from '../support/stores.js';
import { BUYER_TAX_ID, body, sampleInvoice, startApi, type Api } from '../support/http.js';

/** FUZZ_SCALE=20 npx vitest run test/integration/fuzz.test.ts searches harder than the everyday run. */
const scale = Math.max(1, Number(process.env.FUZZ_SCALE) || 1);
const runs = (n: number) => ({ numRuns: n * scale });

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = ReadonlyArray<string | number>;

/** Values that are likely to matter to this API, mixed with anything JSON can carry. */
const awkwardValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    '', ' ', '0', '-1', '0.00', '1e3', '1E+400', 'NaN', 'Infinity', '１', '1,000', '999999999999', '1000000000000.5', '0.000000001',
    '0.13', '0.07', 'exempt', 'special', 'normal', BUYER_TAX_ID, BUYER_TAX_ID.toLowerCase(), '3040201000000000000',
    '\u0000', '\u200b', '😀', '（北京）', "x'); DROP TABLE invoices;--", '%', '_', '\\', 'x'.repeat(1000),
    0, -1, 1.5, 1e308, true, false, null, [], {},
  ),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** A value as a query string carries it; JSON for arrays and objects (String throws on {"toString": 1}). */
const asQueryValue = (value: Json): string => (typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));

const sample = sampleInvoice() as unknown as Json;

/** Every path into the sample invoice: its fields, the buyer's, each line and each line's fields. */
function pathsOf(value: Json, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string | number, Json]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([key, child]) => [[...prefix, key], ...pathsOf(child, [...prefix, key])]);
}
const paths = pathsOf(sample);
const containers: Path[] = [[], ...paths.filter((p) => p[0] === 'buyer' ? p.length === 1 : p[0] === 'lines' && p.length === 2)];

type Mutation =
  | { op: 'replace'; path: Path; value: Json }
  | { op: 'remove'; path: Path }
  | { op: 'add'; path: Path; key: string; value: Json }
  | { op: 'repeatLine'; times: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('replace' as const), path: fc.constantFrom(...paths), value: awkwardValue }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('remove' as const), path: fc.constantFrom(...paths) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      path: fc.constantFrom(...containers),
      key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('name', 'quantity', 'kind', 'constructor', 'prototype', '__proto__')),
      value: awkwardValue,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('repeatLine' as const), times: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(1999, 2000, 2001)) }) },
);

function mutate(original: Json, mutations: readonly Mutation[]): Json {
  let root = structuredClone(original);
  for (const m of mutations) {
    if (m.op === 'repeatLine') {
      const lines = (root as { lines?: unknown }).lines;
      if (Array.isArray(lines) && lines.length > 0) (root as { lines: Json[] }).lines = Array.from({ length: m.times }, () => lines[0] as Json);
      continue;
    }
    const where = m.op === 'add' ? m.path : m.path.slice(0, -1);
    const parent = where.reduce<Json | undefined>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, Json>)[key] : undefined), root);
    if (m.op === 'replace' && m.path.length === 0) root = m.value;
    if (parent === null || parent === undefined || typeof parent !== 'object') continue;
    const target = parent as Record<string | number, Json>;
    if (m.op === 'replace') target[m.path.at(-1)!] = m.value;
    else if (m.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(m.path.at(-1)), 1);
      else delete target[m.path.at(-1)!];
    } else Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

for (const s of storesUnderTest) {
  describe(`fuzzing the API (${s.name})`, { timeout: 30_000 * scale }, () => {
    let api: Api;
    let cleanup: () => Promise<void>;
    let expectedCount = 0;

    beforeAll(async () => {
      const opened = await s.open();
      cleanup = opened.cleanup;
      api = await startApi(opened.store);
    });
    afterAll(async () => {
      await api.close();
      await cleanup();
    });

    /** The answer is an invoice (and exactly one more is stored) or a catalogued refusal (and nothing is). */
    async function expectInvoiceOrRefusal(response: LightMyRequestResponse): Promise<void> {
      expect(response.statusCode, response.body).toBeLessThan(500);
      if (response.statusCode === 201) {
        expectedCount += 1;
        expect(InvoiceView.safeParse(body(response)).success, response.body).toBe(true);
      } else {
        expectRefusal(response);
      }
      expect(await api.countInvoices(api.a.id)).toBe(expectedCount);
    }

    function expectRefusal(response: LightMyRequestResponse): void {
      expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, response.body).toBeLessThan(500);
      const error = body(response).error;
      expect(error, response.body).toBeTypeOf('object');
      const spec = faultByCode(error.code);
      expect(spec, `code ${error.code} is not in the catalogue`).toBeDefined();
      expect(spec!.http).toBe(response.statusCode);
      expect(error.message).toBeTypeOf('string');
      expect(error.message.length).toBeGreaterThan(0);
      expect(error.message_en.length).toBeGreaterThan(0);
      expect(error.request_id).toBeTypeOf('string');
      expect(Array.isArray(error.details)).toBe(true);
      for (const detail of error.details) expect([typeof detail.field, typeof detail.issue]).toEqual(['string', 'string']);
    }

    it('answers any JSON value with an invoice or a catalogued refusal', async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
          await expectInvoiceOrRefusal(await api.issue(api.a.keys.clerk, JSON.stringify(value)));
        }),
        runs(150),
      );
    });

    it('answers any text as a body with a catalogued refusal', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1))), async (text) => {
          await expectInvoiceOrRefusal(await api.issue(api.a.keys.clerk, text));
        }),
        runs(100),
      );
    });

    it('answers mutated valid invoices with an invoice or a catalogued refusal, and stores only what it answered 201 for', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
          await expectInvoiceOrRefusal(await api.issue(api.a.keys.clerk, JSON.stringify(mutate(sample, mutations))));
        }),
        runs(350),
      );
      // The unmutated sample still goes through: the fuzzing left the service working.
      await expectInvoiceOrRefusal(await api.issue(api.a.keys.clerk, sample));
      expect(expectedCount).toBeGreaterThan(0);
    });

    it('answers any query of the invoice list with a page or a catalogued refusal', async () => {
      // Merchant B's few small invoices keep each page cheap; A's list holds the fuzzed ones.
      for (const kind of ['normal', 'special'] as const) expect((await api.issue(api.b.keys.clerk, sampleInvoice({ kind }))).statusCode).toBe(201);
      const keys = ['date_from', 'date_to', 'buyer_name', 'buyer_tax_id', 'min_total', 'max_total', 'status', 'kind', 'cursor', 'limit', 'other'];
      await fc.assert(
        fc.asyncProperty(fc.dictionary(fc.constantFrom(...keys), fc.oneof(fc.string({ maxLength: 20 }), awkwardValue.map(asQueryValue)), { maxKeys: 4 }), async (query) => {
          const response = await api.get(api.b.keys.auditor, '/api/v1/invoices', query);
          if (response.statusCode === 200) expect(InvoicePageView.safeParse(body(response)).success, response.body).toBe(true);
          else expectRefusal(response);
        }),
        runs(150),
      );
    });

    it('answers any invoice number or void reason with an answer or a catalogued refusal', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ maxLength: 30 }), awkwardValue, async (number, reason) => {
          const url = `/api/v1/invoices/${encodeURIComponent(number)}`;
          const read = await api.get(api.a.keys.clerk, url);
          if (read.statusCode !== 200) expectRefusal(read);
          const voiding = await api.inject({ method: 'POST', url: `${url}/void`, headers: { authorization: `Bearer ${api.a.keys.clerk}`, 'content-type': 'application/json' }, payload: JSON.stringify({ reason }) });
          if (voiding.statusCode !== 200) expectRefusal(voiding);
        }),
        runs(100),
      );
    });
  });
}
