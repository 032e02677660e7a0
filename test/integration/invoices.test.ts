// 开具, 查询, 作废 over HTTP, on every store: numbering, idempotency, filters and pages, limits,
// roles and tenancy, and the saved buyers and items that fill in an invoice.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setMerchantLimits } from '../../src/app/merchants.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import {
  BUYER_TAX_ID,
  body,
  oneLine,
  sampleInvoice,
  startApi,
  validUscc,
  withWrongCheckCharacter,
  type Api,
  type ErrorBody,
} from '../support/http.js';

const NUMBER = /^(\d{2})(\d{2})1(\d{15})$/;
const SHANGHAI_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00$/;

const errorOf = (response: LightMyRequestResponse) => body<ErrorBody>(response).error;
const sequenceOf = (number: string) => Number(NUMBER.exec(number)?.[3]);

for (const s of storesUnderTest) {
  describe(`invoices over HTTP (${s.name})`, () => {
    let opened: OpenedStore;
    let api: Api;

    // One store per database; each test gets merchants of its own in it (see startApi).
    beforeAll(async () => {
      opened = await s.open();
    });
    afterAll(() => opened.cleanup());
    beforeEach(async () => {
      api = await startApi(opened.store);
    });
    afterEach(() => api.close());

    const issued = async (key: string, invoice: unknown, headers?: Record<string, string>) => {
      const response = await api.issue(key, invoice, headers);
      expect(response.statusCode, response.body).toBe(201);
      return body(response);
    };
    const voidRequest = (key: string, number: string, payload: unknown = { reason: '开票信息有误' }) =>
      api.inject({ method: 'POST', url: `/api/v1/invoices/${number}/void`, headers: { authorization: `Bearer ${key}` }, payload: payload as object });
    const list = async (key: string, query: Record<string, string | number> = {}): Promise<string[]> => {
      const response = await api.get(key, '/api/v1/invoices', query);
      expect(response.statusCode, response.body).toBe(200);
      return body(response).items.map((item: { number: string }) => item.number);
    };
    /** Follows next_cursor to the end and returns every number seen, page by page. */
    const walk = async (key: string, query: Record<string, string | number>) => {
      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const response = await api.get(key, '/api/v1/invoices', cursor === null ? query : { ...query, cursor });
        expect(response.statusCode, response.body).toBe(200);
        const page = body(response);
        pages.push(page.items.map((item: { number: string }) => item.number));
        cursor = page.next_cursor;
      } while (cursor !== null && pages.length < 100);
      return pages;
    };

    describe('issuing (开具)', () => {
      it('answers 201 with a 20-digit number, Shanghai time, priced lines, totals and 大写', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());

        expect(invoice.number).toBe('26311000000000000001'); // 26 = 2026, 31 = Shanghai, 1 = channel, sequence 1
        expect(invoice.issued_at).toBe('2026-03-10T10:00:00.000+08:00');
        expect(invoice).toMatchObject({ kind: 'normal', status: 'issued', issuer: 'apikey:a-clerk', void_reason: null, status_changed_at: null });
        expect(invoice.seller).toMatchObject({ name: api.a.record.name, tax_id: api.a.record.taxId });
        expect(invoice.buyer).toMatchObject({ name: '深圳市前海某某科技有限公司', tax_id: BUYER_TAX_ID, email: 'ap@example.cn' });
        expect(invoice.lines.map((l: Record<string, string>) => [l.quantity, l.unit_price, l.tax_rate, l.amount, l.tax])).toEqual([
          ['1', '1000', '0.06', '1000.00', '60.00'],
          ['2', '199', '0.13', '398.00', '51.74'],
          ['1', '50', '0.09', '50.00', '4.50'],
        ]);
        expect([invoice.total_amount, invoice.total_tax, invoice.total_with_tax]).toEqual(['1448.00', '116.24', '1564.24']);
        expect(invoice.total_in_words).toBe('壹仟伍佰陆拾肆圆贰角肆分');
        expect(invoice.digest).toMatch(/^[0-9a-f]{64}$/);
        expect(invoice.chain_hash).toMatch(/^[0-9a-f]{64}$/);
      });

      it.each([
        ['1 × 1000.00 at 6 %, price before tax', false, oneLine('1', '1000.00', '0.06'), ['1000.00', '60.00', '1060.00', '壹仟零陆拾圆整']],
        ['1 × 1060.00 at 6 %, price with tax', true, oneLine('1', '1060.00', '0.06'), ['1000.00', '60.00', '1060.00', '壹仟零陆拾圆整']],
        ['1 × 100.00 at 13 %, price with tax', true, oneLine('1', '100.00', '0.13'), ['88.50', '11.50', '100.00', '壹佰圆整']],
        ['3 × 33.33 at 13 %, price before tax', false, oneLine('3', '33.33', '0.13'), ['99.99', '13.00', '112.99', '壹佰壹拾贰圆玖角玖分']],
        ['2 × 500.00 exempt (免税)', false, oneLine('2', '500.00', 'exempt'), ['1000.00', '0.00', '1000.00', '壹仟圆整']],
      ])('prices %s', async (_case, pricesIncludeTax, line, [amount, tax, total, words]) => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice({ prices_include_tax: pricesIncludeTax, lines: [line] }));
        expect(invoice.lines[0]).toMatchObject({ amount, tax });
        expect([invoice.total_amount, invoice.total_tax, invoice.total_with_tax, invoice.total_in_words]).toEqual([amount, tax, total, words]);
        expect(invoice.prices_include_tax).toBe(pricesIncludeTax);
      });

      it('makes the invoice readable at once, by number and in the list, exactly as answered', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        const fetched = await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`);
        expect(fetched.statusCode).toBe(200);
        expect(body(fetched)).toEqual(invoice);
        const page = body(await api.get(api.a.keys.clerk, '/api/v1/invoices'));
        expect(page.items).toEqual([invoice]);
        expect(page.next_cursor).toBeNull();
      });

      it('writes each timestamp in +08:00 and dates the number by the Shanghai year', async () => {
        api.clock.set('2026-12-31T15:59:59.999Z'); // 23:59:59.999 on 31 December in Shanghai
        const lastOf2026 = await issued(api.a.keys.clerk, sampleInvoice());
        api.clock.set('2026-12-31T16:00:00.000Z'); // already 2027 in Shanghai, still 2026 in UTC
        const firstOf2027 = await issued(api.a.keys.clerk, sampleInvoice());
        expect(lastOf2026.issued_at).toBe('2026-12-31T23:59:59.999+08:00');
        expect(firstOf2027.issued_at).toBe('2027-01-01T00:00:00.000+08:00');
        expect([lastOf2026.issued_at, firstOf2027.issued_at].every((t) => SHANGHAI_TIMESTAMP.test(t))).toBe(true);
        expect(lastOf2026.number).toBe('26311000000000000001');
        expect(firstOf2027.number).toBe('27311000000000000001'); // a new year starts a new series
      });

      it('numbers 50 concurrent issues consecutively, without gaps or duplicates', async () => {
        const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => api.issue(i % 2 ? api.a.keys.clerk : api.a.keys.owner, sampleInvoice({ remarks: `并发 ${i}` }))));
        expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(201));
        const numbers = responses.map((r) => body(r).number as string);
        expect(new Set(numbers).size).toBe(50);
        expect(numbers.every((n) => NUMBER.test(n) && n.startsWith('26311'))).toBe(true);
        expect(numbers.map(sequenceOf).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await api.countInvoices(api.a.id)).toBe(50);
      });

      it('keeps each merchant\'s series of its own', async () => {
        const a = await issued(api.a.keys.clerk, sampleInvoice());
        const b = await issued(api.b.keys.clerk, sampleInvoice());
        expect(a.number).toBe('26311000000000000001');
        expect(b.number).toBe('26111000000000000001'); // 11 = Beijing
      });
    });

    describe('Idempotency-Key', () => {
      it('gives the same invoice back for the same key and body, marked as replayed, without a second invoice', async () => {
        const first = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'order-1001' });
        const again = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'order-1001' });
        expect(first.statusCode).toBe(201);
        expect(first.headers['idempotent-replayed']).toBeUndefined();
        expect(again.statusCode).toBe(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(body(again)).toEqual(body(first));
        expect(await api.countInvoices(api.a.id)).toBe(1);
      });

      it('refuses the same key with a different body (3002), naming the first invoice, and changes nothing', async () => {
        const first = await issued(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'order-1002' });
        const other = await api.issue(api.a.keys.clerk, sampleInvoice({ remarks: '另一张' }), { 'idempotency-key': 'order-1002' });
        expect(other.statusCode).toBe(409);
        expect(errorOf(other).code).toBe(3002);
        expect(errorOf(other).message_en).toContain(first.number);
        expect(await api.countInvoices(api.a.id)).toBe(1);
      });

      it('makes exactly one invoice from 50 concurrent requests with the same key', async () => {
        const responses = await Promise.all(Array.from({ length: 50 }, () => api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'burst-7' })));
        expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(201));
        expect(new Set(responses.map((r) => body(r).number)).size).toBe(1);
        expect(responses.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
        expect(await api.countInvoices(api.a.id)).toBe(1);
      });

      it('makes a new invoice for a new key, and for the same key at another merchant', async () => {
        const one = await issued(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'k-1' });
        const two = await issued(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'k-2' });
        const atB = await issued(api.b.keys.clerk, sampleInvoice(), { 'idempotency-key': 'k-1' });
        expect(new Set([one.number, two.number, atB.number]).size).toBe(3);
        expect(atB.seller.tax_id).toBe(api.b.record.taxId);
      });

      it.each([['x'.repeat(129)], ['has space'], ['键']])('refuses the key %j (1019) and makes nothing', async (key) => {
        const response = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': key });
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(1019);
        expect(await api.countInvoices(api.a.id)).toBe(0);
      });
    });

    describe('finding invoices (查询)', () => {
      it('filters by Shanghai calendar date, not UTC date', async () => {
        api.clock.set('2026-03-31T15:59:59Z'); // 23:59:59 on 31 March in Shanghai
        const march = await issued(api.a.keys.clerk, sampleInvoice());
        api.clock.set('2026-03-31T16:30:00Z'); // 00:30 on 1 April in Shanghai, still 31 March in UTC
        const april = await issued(api.a.keys.clerk, sampleInvoice());
        expect(april.issued_at).toBe('2026-04-01T00:30:00.000+08:00');

        const key = api.a.keys.auditor;
        expect(await list(key, { date_from: '2026-04-01' })).toEqual([april.number]);
        expect(await list(key, { date_to: '2026-03-31' })).toEqual([march.number]);
        expect(await list(key, { date_from: '2026-03-31', date_to: '2026-03-31' })).toEqual([march.number]);
        expect(await list(key, { date_from: '2026-03-31', date_to: '2026-04-01' })).toEqual([april.number, march.number]);
        expect(await list(key, { date_from: '2026-04-02' })).toEqual([]);
      });

      it('finds a part of the buyer name, with % and _ as the characters they are', async () => {
        const percent = await issued(api.a.keys.clerk, sampleInvoice({ buyer: { name: '杭州百分百%科技有限公司', tax_id: '' } }));
        const underscore = await issued(api.a.keys.clerk, sampleInvoice({ buyer: { name: '杭州下划线_科技有限公司', tax_id: '' } }));
        const plain = await issued(api.a.keys.clerk, sampleInvoice({ buyer: { name: '杭州普通科技有限公司', tax_id: '' } }));
        const key = api.a.keys.clerk;
        expect(await list(key, { buyer_name: '%' })).toEqual([percent.number]);
        expect(await list(key, { buyer_name: '_' })).toEqual([underscore.number]);
        expect(await list(key, { buyer_name: '%科技' })).toEqual([percent.number]);
        expect(await list(key, { buyer_name: '%_' })).toEqual([]);
        expect(await list(key, { buyer_name: '普通' })).toEqual([plain.number]);
        expect(await list(key, { buyer_name: '杭州' })).toEqual([plain.number, underscore.number, percent.number]);
        expect(await list(key, { buyer_name: '\\' })).toEqual([]);
      });

      it('filters by buyer taxpayer ID, exactly', async () => {
        const otherId = validUscc(55_555_555, '330100');
        const first = await issued(api.a.keys.clerk, sampleInvoice());
        const second = await issued(api.a.keys.clerk, sampleInvoice({ buyer: { name: '杭州某某有限公司', tax_id: otherId } }));
        expect(await list(api.a.keys.clerk, { buyer_tax_id: BUYER_TAX_ID })).toEqual([first.number]);
        expect(await list(api.a.keys.clerk, { buyer_tax_id: otherId })).toEqual([second.number]);
        expect(await list(api.a.keys.clerk, { buyer_tax_id: otherId.slice(0, 10) })).toEqual([]);
      });

      it('pages through one buyer over a date range, newest first, leaving out other buyers and days', async () => {
        const otherId = validUscc(55_555_555, '330100');
        const wanted: string[] = [];
        for (const [day, hour] of [['2026-03-30', 9], ['2026-03-31', 9], ['2026-03-31', 15], ['2026-04-01', 9], ['2026-04-01', 15], ['2026-04-02', 9]] as const) {
          api.clock.set(`${day}T${String(hour - 8).padStart(2, '0')}:00:00Z`); // Shanghai hour
          const ours = await issued(api.a.keys.clerk, sampleInvoice());
          await issued(api.a.keys.clerk, sampleInvoice({ buyer: { name: '杭州某某有限公司', tax_id: otherId } }));
          if (day >= '2026-03-31' && day <= '2026-04-01') wanted.push(ours.number);
        }
        const pages = await walk(api.a.keys.auditor, { buyer_tax_id: BUYER_TAX_ID, date_from: '2026-03-31', date_to: '2026-04-01', limit: 2 });
        expect(pages.map((p) => p.length)).toEqual([2, 2]);
        expect(pages.flat()).toEqual([...wanted].reverse());
      });

      it('filters by 价税合计 range, both ends included', async () => {
        const small = await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '100.00', '0.06')] })); // 106.00
        const middle = await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '1000.00', '0.06')] })); // 1060.00
        const large = await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '10000.00', '0.06')] })); // 10600.00
        const key = api.a.keys.clerk;
        expect(await list(key, { min_total: '1060.00' })).toEqual([large.number, middle.number]);
        expect(await list(key, { max_total: '1060' })).toEqual([middle.number, small.number]);
        expect(await list(key, { min_total: '1060.00', max_total: '1060.00' })).toEqual([middle.number]);
        expect(await list(key, { min_total: '1060.01', max_total: '10599.99' })).toEqual([]);
        expect(await list(key, { min_total: '106', max_total: '10600' })).toEqual([large.number, middle.number, small.number]);
        // Compared as money, not as text: "9.99" < "106.00" although '9' > '1'.
        expect(await list(key, { max_total: '9.99' })).toEqual([]);
        expect(await list(key, { min_total: '9.99' })).toHaveLength(3);
      });

      it('filters by status and by kind', async () => {
        const normal = await issued(api.a.keys.clerk, sampleInvoice());
        const special = await issued(api.a.keys.clerk, sampleInvoice({ kind: 'special' }));
        const toVoid = await issued(api.a.keys.clerk, sampleInvoice());
        expect((await voidRequest(api.a.keys.clerk, toVoid.number)).statusCode).toBe(200);
        const key = api.a.keys.clerk;
        expect(await list(key, { status: 'voided' })).toEqual([toVoid.number]);
        expect(await list(key, { status: 'issued' })).toEqual([special.number, normal.number]);
        expect(await list(key, { kind: 'special' })).toEqual([special.number]);
        expect(await list(key, { kind: 'normal' })).toEqual([toVoid.number, normal.number]);
        expect(await list(key, { kind: 'normal', status: 'issued' })).toEqual([normal.number]);
      });

      it('walks every page with the cursor, newest first, without repeats or gaps', async () => {
        const numbers: string[] = [];
        for (let i = 0; i < 23; i++) numbers.push((await issued(api.a.keys.clerk, sampleInvoice({ remarks: `第 ${i} 张` }))).number);
        const pages = await walk(api.a.keys.clerk, { limit: 5 });
        expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
        expect(pages.flat()).toEqual([...numbers].reverse());
      });

      it('pages through a filtered list, and issuing meanwhile does not shift the pages', async () => {
        for (let i = 0; i < 12; i++) {
          await issued(api.a.keys.clerk, sampleInvoice({ kind: i % 3 === 0 ? 'special' : 'normal' }));
        }
        const first = body(await api.get(api.a.keys.clerk, '/api/v1/invoices', { kind: 'normal', limit: 3 }));
        const newer = await issued(api.a.keys.clerk, sampleInvoice()); // arrives between two page requests
        const rest = await walk(api.a.keys.clerk, { kind: 'normal', limit: 3, cursor: first.next_cursor });
        const seen = [...first.items.map((i: { number: string }) => i.number), ...rest.flat()];
        expect(seen).toHaveLength(8);
        expect(new Set(seen).size).toBe(8);
        expect(seen).not.toContain(newer.number);
        expect(seen).toEqual([...seen].sort().reverse());
      });

      it.each([
        ['garbage', 'not-a-cursor'],
        ['a cursor with letters', Buffer.from('i:abc').toString('base64url')],
        ['an empty cursor', ''],
      ])('refuses %s (1018)', async (_what, cursor) => {
        const response = await api.get(api.a.keys.clerk, '/api/v1/invoices', { cursor });
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(1018);
        expect(errorOf(response).details.map((d) => d.field)).toContain('cursor');
      });

      it.each([['2026-02-30'], ['2026/03/01'], ['20260301'], ['2026-3-1'], ['yesterday']])('refuses the date %s (1016)', async (date) => {
        for (const field of ['date_from', 'date_to']) {
          const response = await api.get(api.a.keys.clerk, '/api/v1/invoices', { [field]: date });
          expect(response.statusCode).toBe(422);
          expect(errorOf(response).code).toBe(1016);
          expect(errorOf(response).details.map((d) => d.field)).toEqual([field]);
        }
      });

      it.each([['0'], ['201'], ['-1'], ['2.5'], ['many']])('refuses the page size %s (1018)', async (limit) => {
        const response = await api.get(api.a.keys.clerk, '/api/v1/invoices', { limit });
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(1018);
      });

      it('refuses a date range that ends before it starts (1018)', async () => {
        const response = await api.get(api.a.keys.clerk, '/api/v1/invoices', { date_from: '2026-03-10', date_to: '2026-03-09' });
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(1018);
      });

      it('answers 3001 for a number that was never issued', async () => {
        const response = await api.get(api.a.keys.clerk, '/api/v1/invoices/26311000000000000999');
        expect(response.statusCode).toBe(404);
        expect(errorOf(response).code).toBe(3001);
      });
    });

    describe('voiding (作废)', () => {
      it.each([
        ['no reason', {}, 1005],
        ['an empty reason', { reason: '' }, 1005],
        ['a blank reason', { reason: '   ' }, 1005],
        ['a reason with a control character', { reason: '错误\u0000' }, 1014],
      ])('needs a reason: %s is refused', async (_what, payload, code) => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        const response = await voidRequest(api.a.keys.clerk, invoice.number, payload);
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(code);
        expect(errorOf(response).details.map((d) => d.field)).toContain('reason');
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`)).status).toBe('issued');
      });

      it('moves the invoice to voided with the reason and the time, and keeps it findable', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        api.clock.advance(3_600_000);
        const response = await voidRequest(api.a.keys.owner, invoice.number, { reason: '购买方名称填写错误' });
        expect(response.statusCode).toBe(200);
        const voided = body(response);
        expect(voided).toMatchObject({ number: invoice.number, status: 'voided', void_reason: '购买方名称填写错误', status_changed_at: '2026-03-10T11:00:00.000+08:00' });
        // Not yet at the tax service: it is uploaded first, then voided there.
        expect(voided.void_report).toMatchObject({ state: 'pending', reached_tax_service: false, waiting_for: 'upload' });
        // The content is unchanged: only the status moved.
        expect({ ...voided, status: 'issued', void_reason: null, status_changed_at: null, void_report: null }).toEqual(invoice);
        expect(body(await api.get(api.a.keys.auditor, `/api/v1/invoices/${invoice.number}`))).toEqual(voided);
      });

      it('refuses to void twice (3005)', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        expect((await voidRequest(api.a.keys.clerk, invoice.number)).statusCode).toBe(200);
        const again = await voidRequest(api.a.keys.clerk, invoice.number, { reason: '再次作废' });
        expect(again.statusCode).toBe(409);
        expect(errorOf(again).code).toBe(3005);
        expect(errorOf(again).message).toBe(`发票 ${invoice.number} 当前状态为已作废，不能作废`);
        expect(errorOf(again).message_en).toBe(`Invoice ${invoice.number} is voided and cannot be voided`);
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`)).void_reason).toBe('开票信息有误');
      });

      it('voids until the last moment of the month of issue, and refuses from the first moment of the next (3007)', async () => {
        api.clock.set('2026-02-28T16:00:00Z'); // 1 March 00:00 in Shanghai
        const early = await issued(api.a.keys.clerk, sampleInvoice());
        const late = await issued(api.a.keys.clerk, sampleInvoice());
        api.clock.set('2026-03-31T15:59:59.999Z'); // 31 March 23:59:59.999 in Shanghai
        expect((await voidRequest(api.a.keys.clerk, early.number)).statusCode).toBe(200);
        api.clock.set('2026-03-31T16:00:00Z'); // 1 April in Shanghai, still March in UTC
        const response = await voidRequest(api.a.keys.clerk, late.number);
        expect(response.statusCode).toBe(409);
        expect(errorOf(response).code).toBe(3007);
        expect(errorOf(response).message_en).toContain('2026-03');
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${late.number}`)).status).toBe('issued');
      });

      it('gives the voided amount back to the month\'s credit line', async () => {
        await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '1000.00' });
        const full = await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '1000.00', '0.13')] }));
        expect(errorOf(await api.issue(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '0.01', '0')] }))).code).toBe(3004);
        expect((await voidRequest(api.a.keys.clerk, full.number)).statusCode).toBe(200);
        await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '1000.00', '0.13')] }));
      });
    });

    describe('limits (开票限额, 授信额度)', () => {
      it('refuses the 4th invoice of a day at a daily limit of 3 (3003), and issues again on the next Shanghai day', async () => {
        await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: 3, operatorCredit: null });
        for (let i = 0; i < 3; i++) await issued(api.a.keys.clerk, sampleInvoice());
        const refused = await api.issue(api.a.keys.clerk, sampleInvoice());
        expect(refused.statusCode).toBe(422);
        expect(errorOf(refused).code).toBe(3003);
        expect(errorOf(refused).message_en).toContain('3');
        expect(await api.countInvoices(api.a.id)).toBe(3);

        api.clock.set('2026-03-10T15:59:59.999Z'); // 23:59:59.999 in Shanghai: still the same day
        expect(errorOf(await api.issue(api.a.keys.clerk, sampleInvoice())).code).toBe(3003);
        api.clock.set('2026-03-10T16:00:00Z'); // midnight in Shanghai
        const nextDay = await issued(api.a.keys.clerk, sampleInvoice());
        expect(nextDay.issued_at).toBe('2026-03-11T00:00:00.000+08:00');
        expect(sequenceOf(nextDay.number)).toBe(4); // refusals used no number
      });

      it('accepts the invoice that exactly fills the credit line and refuses one fen more (3004), counting pre-tax amounts only', async () => {
        await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '2500.00' });
        await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '1500.00', '0.13')] })); // 1500.00 + 195.00 tax
        const filling = await issued(api.a.keys.clerk, sampleInvoice({ prices_include_tax: true, lines: [oneLine('1', '1130.00', '0.13')] }));
        expect(filling.total_amount).toBe('1000.00'); // 1130.00 with tax is 1000.00 before tax: the line is now exactly full

        const refused = await api.issue(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '0.01', '0')] }));
        expect(refused.statusCode).toBe(422);
        expect(errorOf(refused).code).toBe(3004);
        expect(errorOf(refused).message_en).toContain('0.00 yuan left, this invoice 0.01 yuan');
        expect(await api.countInvoices(api.a.id)).toBe(2);

        api.clock.set('2026-03-31T16:00:00Z'); // April in Shanghai: a fresh month
        const april = await issued(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '2500.00', '0.13')] }));
        expect(sequenceOf(april.number)).toBe(3);
      });

      it('refuses an invoice larger than the whole credit line in one go', async () => {
        await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '1000.00' });
        const refused = await api.issue(api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '1000.01', '0.06')] }));
        expect(errorOf(refused).code).toBe(3004);
        expect(await api.countInvoices(api.a.id)).toBe(0);
      });

      it('keeps to the daily limit under concurrent issues', async () => {
        await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: 3, operatorCredit: null });
        const responses = await Promise.all(Array.from({ length: 10 }, () => api.issue(api.a.keys.clerk, sampleInvoice())));
        expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(3);
        expect(responses.filter((r) => r.statusCode !== 201).map((r) => errorOf(r).code)).toEqual(Array(7).fill(3003));
        expect(await api.countInvoices(api.a.id)).toBe(3);
      });
    });

    describe('roles', () => {
      it('lets an auditor read but not issue or void (2006)', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        expect((await api.get(api.a.keys.auditor, '/api/v1/invoices')).statusCode).toBe(200);
        expect((await api.get(api.a.keys.auditor, `/api/v1/invoices/${invoice.number}`)).statusCode).toBe(200);

        const issue = await api.issue(api.a.keys.auditor, sampleInvoice());
        expect(issue.statusCode).toBe(403);
        expect(errorOf(issue).code).toBe(2006);
        const voiding = await voidRequest(api.a.keys.auditor, invoice.number);
        expect(voiding.statusCode).toBe(403);
        expect(errorOf(voiding).code).toBe(2006);
        expect(await api.countInvoices(api.a.id)).toBe(1);
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`)).status).toBe('issued');
      });

      it('does not let an operator see or issue invoices (2006)', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        for (const response of [
          await api.get(api.a.keys.operator, '/api/v1/invoices'),
          await api.get(api.a.keys.operator, `/api/v1/invoices/${invoice.number}`),
          await api.issue(api.a.keys.operator, sampleInvoice()),
          await voidRequest(api.a.keys.operator, invoice.number),
        ]) {
          expect(response.statusCode).toBe(403);
          expect(errorOf(response).code).toBe(2006);
        }
        expect(await api.countInvoices(api.a.id)).toBe(1);
      });

      it('asks for credentials when there are none (2003)', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        for (const response of [
          await api.inject({ method: 'GET', url: '/api/v1/invoices' }),
          await api.inject({ method: 'GET', url: `/api/v1/invoices/${invoice.number}` }),
          await api.inject({ method: 'POST', url: '/api/v1/invoices', payload: sampleInvoice() }),
          await api.inject({ method: 'POST', url: `/api/v1/invoices/${invoice.number}/void`, payload: { reason: '无权' } }),
          await api.inject({ method: 'GET', url: '/api/v1/saved-buyers' }),
        ]) {
          expect(response.statusCode).toBe(401);
          expect(errorOf(response).code).toBe(2003);
        }
        expect(await api.countInvoices(api.a.id)).toBe(1);
      });

      it.each([
        ['a garbage bearer', 'Bearer garbage'],
        ['a well-formed key nobody issued', `Bearer fpk_0123456789abcdef_${'A'.repeat(43)}`],
        ['a real key with one character changed', 'TAMPER'],
        ['Basic credentials', 'Basic b3duZXItYTpwYXNzd29yZA=='],
      ])('refuses %s (2004)', async (_what, authorization) => {
        const header = authorization === 'TAMPER' ? `Bearer ${api.a.keys.owner.slice(0, -1)}${api.a.keys.owner.endsWith('A') ? 'B' : 'A'}` : authorization;
        const read = await api.inject({ method: 'GET', url: '/api/v1/invoices', headers: { authorization: header } });
        const issue = await api.inject({ method: 'POST', url: '/api/v1/invoices', headers: { authorization: header }, payload: sampleInvoice() });
        for (const response of [read, issue]) {
          expect(response.statusCode).toBe(401);
          expect(errorOf(response).code).toBe(2004);
        }
        expect(await api.countInvoices(api.a.id)).toBe(0);
      });
    });

    describe('tenancy: one merchant never reaches another\'s data', () => {
      it('answers 3001 to merchant B for merchant A\'s invoice, on reading and on voiding', async () => {
        const invoice = await issued(api.a.keys.clerk, sampleInvoice());
        for (const key of [api.b.keys.owner, api.b.keys.clerk, api.b.keys.auditor]) {
          const read = await api.get(key, `/api/v1/invoices/${invoice.number}`);
          expect(read.statusCode).toBe(404);
          expect(errorOf(read).code).toBe(3001);
        }
        for (const key of [api.b.keys.owner, api.b.keys.clerk]) {
          const voiding = await voidRequest(key, invoice.number);
          expect(voiding.statusCode).toBe(404);
          expect(errorOf(voiding).code).toBe(3001);
        }
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`))).toEqual(invoice);
      });

      it('never lists A\'s invoices to B, whatever the filters or cursor', async () => {
        const aNumbers: string[] = [];
        for (const kind of ['normal', 'special', 'normal'] as const) aNumbers.push((await issued(api.a.keys.clerk, sampleInvoice({ kind }))).number);
        await voidRequest(api.a.keys.clerk, aNumbers[2]!);
        const bOwn = await issued(api.b.keys.clerk, sampleInvoice());
        const farCursor = Buffer.from('i:999999').toString('base64url');

        const queries: Array<Record<string, string | number>> = [
          {},
          { limit: 200 },
          { buyer_name: '深圳' },
          { buyer_tax_id: BUYER_TAX_ID },
          { date_from: '2026-03-10', date_to: '2026-03-10' },
          { min_total: '0.01', max_total: '99999999999.99' },
          { status: 'issued' },
          { status: 'voided' },
          { kind: 'special' },
          { kind: 'normal' },
          { cursor: farCursor },
        ];
        for (const query of queries) {
          const seen = (await walk(api.b.keys.auditor, query)).flat();
          expect(seen.filter((n) => aNumbers.includes(n)), JSON.stringify(query)).toEqual([]);
          expect(seen.every((n) => n === bOwn.number), JSON.stringify(query)).toBe(true);
        }
      });

      it('answers 3008 to B for A\'s saved buyer and saved item, and leaves them in place', async () => {
        const buyer = body(await api.inject({ method: 'PUT', url: '/api/v1/saved-buyers', headers: { authorization: `Bearer ${api.a.keys.clerk}` }, payload: { name: '甲的常用客户', tax_id: BUYER_TAX_ID } }));
        const item = body(await api.inject({ method: 'PUT', url: '/api/v1/saved-items', headers: { authorization: `Bearer ${api.a.keys.clerk}` }, payload: oneLineItem('甲的常用商品') }));
        for (const url of [`/api/v1/saved-buyers/${buyer.id}`, `/api/v1/saved-items/${item.id}`]) {
          const response = await api.inject({ method: 'DELETE', url, headers: { authorization: `Bearer ${api.b.keys.owner}` } });
          expect(response.statusCode, url).toBe(404);
          expect(errorOf(response).code).toBe(3008);
        }
        expect(body(await api.get(api.b.keys.owner, '/api/v1/saved-buyers', { q: '甲' })).items).toEqual([]);
        expect(body(await api.get(api.b.keys.owner, '/api/v1/saved-items', { q: '甲' })).items).toEqual([]);
        expect(body(await api.get(api.a.keys.clerk, '/api/v1/saved-buyers')).items.map((b: { id: string }) => b.id)).toEqual([buyer.id]);
        expect(body(await api.get(api.a.keys.clerk, '/api/v1/saved-items')).items.map((i: { id: string }) => i.id)).toEqual([item.id]);
      });

      it('answers B about A\'s API key exactly as about a key that does not exist, and the key keeps working', async () => {
        const aKeyId = /^fpk_([0-9a-f]{16})_/.exec(api.a.keys.clerk)![1]!;
        const revoke = (id: string) => api.inject({ method: 'DELETE', url: `/api/v1/api-keys/${id}`, headers: { authorization: `Bearer ${api.b.keys.owner}` } });
        const theirs = await revoke(aKeyId);
        const missing = await revoke('ffffffffffffffff');
        expect(theirs.statusCode).toBeGreaterThanOrEqual(400);
        expect([theirs.statusCode, errorOf(theirs).code]).toEqual([missing.statusCode, errorOf(missing).code]);
        expect(errorOf(theirs).code).toBe(2009);
        expect(errorOf(theirs).message_en.replace(aKeyId, '<id>')).toBe(errorOf(missing).message_en.replace('ffffffffffffffff', '<id>'));
        expect((await api.get(api.a.keys.clerk, '/api/v1/invoices')).statusCode).toBe(200);
        const listed = body(await api.get(api.b.keys.owner, '/api/v1/api-keys')).items.map((k: { id: string }) => k.id);
        expect(listed).not.toContain(aKeyId);
      });
    });

    describe('saved buyers and items (常用购买方, 常用商品)', () => {
      const put = (key: string, path: string, payload: object) =>
        api.inject({ method: 'PUT', url: path, headers: { authorization: `Bearer ${key}` }, payload });
      const del = (key: string, path: string) => api.inject({ method: 'DELETE', url: path, headers: { authorization: `Bearer ${key}` } });
      const names = async (path: string, q?: string) =>
        body(await api.get(api.a.keys.clerk, path, q === undefined ? {} : { q })).items.map((e: { name: string }) => e.name);

      it('saves, searches, updates by name and forgets a buyer', async () => {
        const saved = await put(api.a.keys.clerk, '/api/v1/saved-buyers', { name: '深圳市前海某某科技有限公司', tax_id: BUYER_TAX_ID, address: '深圳市南山区' });
        expect(saved.statusCode).toBe(200);
        const first = body(saved);
        expect(first).toMatchObject({ name: '深圳市前海某某科技有限公司', tax_id: BUYER_TAX_ID, address: '深圳市南山区', phone: '', email: '' });
        expect(first.updated_at).toMatch(SHANGHAI_TIMESTAMP);
        api.clock.advance(1000);
        await put(api.a.keys.clerk, '/api/v1/saved-buyers', { name: '张三' });

        expect(await names('/api/v1/saved-buyers')).toEqual(['张三', '深圳市前海某某科技有限公司']);
        expect(await names('/api/v1/saved-buyers', '前海')).toEqual(['深圳市前海某某科技有限公司']);
        expect(await names('/api/v1/saved-buyers', BUYER_TAX_ID)).toEqual(['深圳市前海某某科技有限公司']);
        expect(await names('/api/v1/saved-buyers', '%')).toEqual([]);

        api.clock.advance(1000);
        const updated = body(await put(api.a.keys.clerk, '/api/v1/saved-buyers', { name: '深圳市前海某某科技有限公司', tax_id: BUYER_TAX_ID, address: '深圳市福田区' }));
        expect(updated.id).toBe(first.id);
        expect(updated.address).toBe('深圳市福田区');
        expect(await names('/api/v1/saved-buyers')).toEqual(['深圳市前海某某科技有限公司', '张三']);

        expect((await del(api.a.keys.clerk, `/api/v1/saved-buyers/${first.id}`)).statusCode).toBe(204);
        expect(await names('/api/v1/saved-buyers')).toEqual(['张三']);
        const again = await del(api.a.keys.clerk, `/api/v1/saved-buyers/${first.id}`);
        expect(again.statusCode).toBe(404);
        expect(errorOf(again).code).toBe(3008);
      });

      it('refuses a saved buyer with an invalid taxpayer ID (1001), naming the field, and saves nothing', async () => {
        const response = await put(api.a.keys.clerk, '/api/v1/saved-buyers', { name: '某某公司', tax_id: withWrongCheckCharacter(BUYER_TAX_ID) });
        expect(response.statusCode).toBe(422);
        expect(errorOf(response).code).toBe(1001);
        // The body of this route is the buyer itself, so the field is tax_id (not buyer.tax_id).
        expect(errorOf(response).details.map((d) => d.field)).toEqual(['tax_id']);
        expect(await names('/api/v1/saved-buyers')).toEqual([]);
      });

      it('saves, searches, updates by name and forgets an item', async () => {
        const saved = await put(api.a.keys.clerk, '/api/v1/saved-items', oneLineItem('*信息技术服务*软件维护', '800.00'));
        expect(saved.statusCode).toBe(200);
        const first = body(saved);
        expect(first).toMatchObject({ name: '*信息技术服务*软件维护', tax_code: '3040201000000000000', unit_price: '800', tax_rate: '0.06' });
        api.clock.advance(1000);
        await put(api.a.keys.clerk, '/api/v1/saved-items', { ...oneLineItem('*运输服务*运费'), tax_rate: '0.09' });

        expect(await names('/api/v1/saved-items', '维护')).toEqual(['*信息技术服务*软件维护']);
        expect(await names('/api/v1/saved-items', '*')).toEqual(['*运输服务*运费', '*信息技术服务*软件维护']);

        api.clock.advance(1000);
        const updated = body(await put(api.a.keys.clerk, '/api/v1/saved-items', oneLineItem('*信息技术服务*软件维护', '900.00')));
        expect([updated.id, updated.unit_price]).toEqual([first.id, '900']);
        expect(await names('/api/v1/saved-items')).toEqual(['*信息技术服务*软件维护', '*运输服务*运费']);

        expect((await del(api.a.keys.clerk, `/api/v1/saved-items/${first.id}`)).statusCode).toBe(204);
        expect(await names('/api/v1/saved-items')).toEqual(['*运输服务*运费']);
      });

      it('refuses an item with an unknown rate (1010) or a quantity (1004)', async () => {
        const rate = await put(api.a.keys.clerk, '/api/v1/saved-items', { ...oneLineItem('某商品'), tax_rate: '0.07' });
        expect(errorOf(rate).code).toBe(1010);
        const quantity = await put(api.a.keys.clerk, '/api/v1/saved-items', { ...oneLineItem('某商品'), quantity: '1' });
        expect(errorOf(quantity).code).toBe(1004);
        expect(errorOf(quantity).details.map((d) => d.field)).toEqual(['quantity']);
        expect(await names('/api/v1/saved-items')).toEqual([]);
      });

      it('lets an auditor read the saved lists but not change them (2006)', async () => {
        expect((await api.get(api.a.keys.auditor, '/api/v1/saved-buyers')).statusCode).toBe(200);
        const response = await put(api.a.keys.auditor, '/api/v1/saved-buyers', { name: '某某公司' });
        expect(response.statusCode).toBe(403);
        expect(errorOf(response).code).toBe(2006);
      });
    });
  });
}

function oneLineItem(name: string, unitPrice = '100.00') {
  return { name, tax_code: '3040201000000000000', unit: '项', unit_price: unitPrice, tax_rate: '0.06' };
}
