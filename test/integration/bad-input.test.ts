// What a wrong request gets back: one error shape, the catalogue code, the field to fix, a message
// in Chinese and in English, a request id — and no invoice. Hostile text is data, kept verbatim.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest } from '../support/stores.js';
import { createApiKey } from '../../src/app/api-keys.js';
import { addMerchant } from '../../src/app/merchants.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { englishRun } from '../support/chinese.js';
import { gbkBytes } from '../support/gbk.js';
import { BUYER_TAX_ID, body, oneLine, sampleInvoice, startApi, validUscc, withWrongCheckCharacter, type Api, type ErrorBody, type InvoiceBody } from '../support/http.js';

type Mutation = (invoice: Record<string, any>) => void;

/** A sample invoice changed by `mutate`, as a JSON text. */
function changed(mutate: Mutation): string {
  const invoice: Record<string, any> = structuredClone(sampleInvoice());
  mutate(invoice);
  return JSON.stringify(invoice);
}

const line = (invoice: Record<string, any>, index = 0): Record<string, any> => invoice.lines[index];

interface BadRequest {
  what: string;
  payload: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  code: number;
  field: string;
}

const JSON_TYPE = { 'content-type': 'application/json' };

const cases: BadRequest[] = [
  { what: 'malformed JSON', payload: '{"kind": "normal", "buyer": {', status: 400, code: 1002, field: 'body' },
  { what: 'a trailing comma', payload: changed(() => {}).replace(/}$/, ',}'), status: 400, code: 1002, field: 'body' },
  { what: 'an empty body', payload: '', status: 400, code: 1002, field: 'body' },
  { what: 'a __proto__ key', payload: '{"__proto__": {"admin": true}, "kind": "normal"}', status: 400, code: 1002, field: 'body' },
  { what: 'null instead of an object', payload: 'null', status: 422, code: 1003, field: 'body' },
  { what: 'an array instead of an object', payload: '[]', status: 422, code: 1003, field: 'body' },
  { what: 'a quantity as a JSON number', payload: changed((i) => (line(i).quantity = 1)), status: 422, code: 1003, field: 'lines[0].quantity' },
  { what: 'a unit price as a JSON number', payload: changed((i) => (line(i, 2).unit_price = 50.5)), status: 422, code: 1003, field: 'lines[2].unit_price' },
  { what: 'prices_include_tax as a string', payload: changed((i) => (i.prices_include_tax = 'yes')), status: 422, code: 1003, field: 'prices_include_tax' },
  { what: 'buyer as a string', payload: changed((i) => (i.buyer = '某某公司')), status: 422, code: 1003, field: 'buyer' },
  { what: 'lines as an object', payload: changed((i) => (i.lines = { 0: line(i) })), status: 422, code: 1003, field: 'lines' },
  { what: 'an unknown kind', payload: changed((i) => (i.kind = 'proforma')), status: 422, code: 1003, field: 'kind' },
  { what: 'a 15-digit tax code', payload: changed((i) => (line(i, 1).tax_code = '109051103000000')), status: 422, code: 1003, field: 'lines[1].tax_code' },
  { what: 'a bad e-mail address', payload: changed((i) => (i.buyer.email = 'ap at example.cn')), status: 422, code: 1003, field: 'buyer.email' },
  { what: 'letters in a phone number', payload: changed((i) => (i.buyer.phone = 'call me')), status: 422, code: 1003, field: 'buyer.phone' },
  { what: 'an unknown field at the top level', payload: changed((i) => (i.discount = '10')), status: 422, code: 1004, field: 'discount' },
  { what: 'an unknown field inside a line', payload: changed((i) => (line(i, 1).colour = 'red')), status: 422, code: 1004, field: 'lines[1].colour' },
  { what: 'an unknown field inside the buyer', payload: changed((i) => (i.buyer.nickname = '老王')), status: 422, code: 1004, field: 'buyer.nickname' },
  { what: 'no buyer name', payload: changed((i) => delete i.buyer.name), status: 422, code: 1005, field: 'buyer.name' },
  { what: 'an empty buyer name', payload: changed((i) => (i.buyer.name = '')), status: 422, code: 1005, field: 'buyer.name' },
  { what: 'no lines', payload: changed((i) => delete i.lines), status: 422, code: 1005, field: 'lines' },
  { what: 'no kind', payload: changed((i) => delete i.kind), status: 422, code: 1005, field: 'kind' },
  { what: 'a line without a rate', payload: changed((i) => delete line(i, 2).tax_rate), status: 422, code: 1005, field: 'lines[2].tax_rate' },
  { what: 'a special invoice without buyer tax ID', payload: changed((i) => ((i.kind = 'special'), (i.buyer.tax_id = ''))), status: 422, code: 1005, field: 'buyer.tax_id' },
  { what: 'empty lines', payload: changed((i) => (i.lines = [])), status: 422, code: 1006, field: 'lines' },
  { what: '2,001 lines', payload: changed((i) => (i.lines = Array.from({ length: 2001 }, () => line(i)))), status: 422, code: 1007, field: 'lines' },
  { what: 'a zero quantity', payload: changed((i) => (line(i).quantity = '0')), status: 422, code: 1008, field: 'lines[0].quantity' },
  { what: 'a negative quantity', payload: changed((i) => (line(i, 1).quantity = '-2')), status: 422, code: 1008, field: 'lines[1].quantity' },
  { what: 'an absurd quantity', payload: changed((i) => (line(i).quantity = '1000000000000.1')), status: 422, code: 1008, field: 'lines[0].quantity' },
  { what: 'a quantity in exponent notation', payload: changed((i) => (line(i).quantity = '1e3')), status: 422, code: 1008, field: 'lines[0].quantity' },
  { what: 'a quantity with 9 decimals', payload: changed((i) => (line(i).quantity = '0.123456789')), status: 422, code: 1008, field: 'lines[0].quantity' },
  { what: 'full-width digits in a quantity', payload: changed((i) => (line(i).quantity = '１２')), status: 422, code: 1008, field: 'lines[0].quantity' },
  { what: 'a zero price', payload: changed((i) => (line(i).unit_price = '0.00')), status: 422, code: 1009, field: 'lines[0].unit_price' },
  { what: 'a negative price', payload: changed((i) => (line(i, 2).unit_price = '-50')), status: 422, code: 1009, field: 'lines[2].unit_price' },
  { what: 'an absurd price', payload: changed((i) => (line(i).unit_price = '99999999999999')), status: 422, code: 1009, field: 'lines[0].unit_price' },
  { what: 'a price with a thousands separator', payload: changed((i) => (line(i).unit_price = '1,000.00')), status: 422, code: 1009, field: 'lines[0].unit_price' },
  { what: 'an unknown rate 0.07', payload: changed((i) => (line(i, 1).tax_rate = '0.07')), status: 422, code: 1010, field: 'lines[1].tax_rate' },
  { what: 'a rate written as a percentage', payload: changed((i) => (line(i).tax_rate = '6%')), status: 422, code: 1010, field: 'lines[0].tax_rate' },
  { what: 'a line amount that overflows', payload: changed((i) => (i.lines = [oneLine('999999999999', '999999999999', '0.13')])), status: 422, code: 1012, field: 'lines[0].amount' },
  { what: 'a line that rounds to zero', payload: changed((i) => (i.lines = [oneLine('0.001', '1', '0.13')])), status: 422, code: 1012, field: 'lines[0].amount' },
  {
    what: 'lines that overflow only together',
    payload: changed((i) => (i.lines = [oneLine('60000000000', '1', '0'), oneLine('60000000000', '1', '0')])),
    status: 422, code: 1012, field: 'lines',
  },
  { what: 'a wrong buyer USCC check character', payload: changed((i) => (i.buyer.tax_id = withWrongCheckCharacter(BUYER_TAX_ID))), status: 422, code: 1001, field: 'buyer.tax_id' },
  { what: 'a lower-case buyer tax ID', payload: changed((i) => (i.buyer.tax_id = BUYER_TAX_ID.toLowerCase())), status: 422, code: 1001, field: 'buyer.tax_id' },
  { what: 'a buyer tax ID of 16 characters', payload: changed((i) => (i.buyer.tax_id = BUYER_TAX_ID.slice(0, 16))), status: 422, code: 1001, field: 'buyer.tax_id' },
  { what: 'a control character in the buyer name', payload: changed((i) => (i.buyer.name = '某某\u0007公司')), status: 422, code: 1014, field: 'buyer.name' },
  { what: 'a zero-width space in the buyer name', payload: changed((i) => (i.buyer.name = '某某\u200b公司')), status: 422, code: 1014, field: 'buyer.name' },
  { what: 'an emoji in an item name', payload: changed((i) => (line(i, 1).name = '*计算机配套产品*键盘⌨️')), status: 422, code: 1014, field: 'lines[1].name' },
  { what: 'an emoji in the buyer name', payload: changed((i) => (i.buyer.name = '开心😀公司')), status: 422, code: 1014, field: 'buyer.name' },
  { what: 'remarks of 231 characters', payload: changed((i) => (i.remarks = '备'.repeat(231))), status: 422, code: 1014, field: 'remarks' },
  { what: 'a buyer name with a trailing space', payload: changed((i) => (i.buyer.name = '某某公司 ')), status: 422, code: 1014, field: 'buyer.name' },
  { what: 'a replacement character (U+FFFD) in the buyer name', payload: changed((i) => (i.buyer.name = '深圳市\ufffd\ufffd某某科技有限公司')), status: 422, code: 1014, field: 'buyer.name' },
  { what: 'half a character (a lone surrogate) in an item name', payload: changed((i) => (line(i, 1).name = '*计算机配套产品*键盘\ud83d')), status: 422, code: 1014, field: 'lines[1].name' },
  { what: 'a buyer name with a character the invoice font lacks (𠀀)', payload: changed((i) => (i.buyer.name = '刘䶮𬌗𠀀龘㐀商行')), status: 422, code: 1025, field: 'buyer.name' },
  { what: 'an item name with a character the invoice font lacks (𠮷)', payload: changed((i) => (line(i, 2).name = '*餐饮服务*𠮷野家')), status: 422, code: 1025, field: 'lines[2].name' },
  { what: 'a GBK body (bytes that are not UTF-8)', payload: gbkBytes(changed(() => {})), status: 400, code: 1024, field: 'body' },
  { what: 'a GBK body declared charset=gbk', payload: gbkBytes(changed(() => {})), headers: { 'content-type': 'application/json; charset=gbk' }, status: 415, code: 1021, field: 'content-type' },
  { what: 'a UTF-8 body declared charset=GB18030', payload: changed(() => {}), headers: { 'content-type': 'application/json; charset="GB18030"' }, status: 415, code: 1021, field: 'content-type' },
  { what: 'a body over the size limit', payload: changed((i) => (i.remarks = 'x'.repeat(2_200_000))), status: 413, code: 1017, field: 'body' },
  { what: 'a text/plain body', payload: changed(() => {}), headers: { 'content-type': 'text/plain' }, status: 415, code: 1021, field: 'content-type' },
  { what: 'an XML body', payload: '<invoice/>', headers: { 'content-type': 'application/xml' }, status: 415, code: 1021, field: 'content-type' },
  { what: 'a form body', payload: 'kind=normal', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 1021, field: 'content-type' },
  { what: 'an Idempotency-Key of 129 characters', payload: changed(() => {}), headers: { 'idempotency-key': 'k'.repeat(129) }, status: 422, code: 1019, field: 'idempotency-key' },
];

for (const s of storesUnderTest) {
  describe(`bad input (${s.name})`, () => {
    let api: Api;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const opened = await s.open();
      cleanup = opened.cleanup;
      api = await startApi(opened.store);
    });
    afterAll(async () => {
      await api.close();
      await cleanup();
    });

    it('accepts the sample these cases are made from', async () => {
      const before = await api.countInvoices(api.a.id);
      expect((await api.issue(api.a.keys.clerk, changed(() => {}))).statusCode).toBe(201);
      expect(await api.countInvoices(api.a.id)).toBe(before + 1);
    });

    it.each(cases)('refuses $what with $status, code $code, naming $field', async ({ payload, headers, status, code, field }) => {
      const before = await api.countInvoices(api.a.id);
      const response = await api.issue(api.a.keys.clerk, payload, { ...JSON_TYPE, ...headers });

      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const { error } = body<ErrorBody>(response);
      expect(error.code).toBe(code);
      expect(error.details.map((d) => d.field)).toContain(field);
      expect(error.message.length).toBeGreaterThan(0);
      expect(englishRun(error.message), error.message).toBeUndefined();
      expect(error.message_en.length).toBeGreaterThan(0);
      expect(error.remedy.length).toBeGreaterThan(0);
      expect(error.request_id).toBeTruthy();
      expect(response.headers['x-request-id']).toBe(error.request_id);
      expect(await api.countInvoices(api.a.id)).toBe(before);
    });

    it('gives the reason of a refusal in Chinese in the message and in English in message_en', async () => {
      const taxId = body<ErrorBody>(await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { tax_id: withWrongCheckCharacter(BUYER_TAX_ID) } }))).error;
      expect(taxId.code).toBe(1001);
      expect(taxId.message).toMatch(/^购买方纳税人识别号无效：第 18 位校验码应为“[0-9A-Y]”，实际为“[0-9A-Y]”$/);
      expect(taxId.message_en).toMatch(/^Buyer taxpayer ID is invalid: check character at position 18 should be '[0-9A-Y]', found '[0-9A-Y]'$/);

      const quantity = body<ErrorBody>(await api.issue(api.a.keys.clerk, changed((i) => (line(i).quantity = 1)))).error;
      expect([quantity.message, quantity.message_en]).toEqual(['字段 lines[0].quantity 的值无效：应为文本', 'Field lines[0].quantity is invalid: Invalid input: expected string, received number']);

      const decimals = body<ErrorBody>(await api.issue(api.a.keys.clerk, changed((i) => (line(i).quantity = '1.123456789')))).error;
      expect([decimals.message, decimals.message_en]).toEqual(['lines[0].quantity 数量无效：有 9 位小数，最多允许 8 位', 'Quantity lines[0].quantity is invalid: 9 decimal places; at most 8 are allowed']);

      // JSON.parse's own words are kept, after a Chinese description of what kind of problem it is.
      const malformed = body<ErrorBody>(await api.issue(api.a.keys.clerk, '{"kind": "normal", "buyer": {')).error;
      expect(malformed.message).toMatch(/^请求体不是有效的 JSON：JSON 语法错误（原文：.+）$/);
      expect(malformed.message_en).toMatch(/^The request body is not valid JSON: \S/);
      expect(malformed.message_en).not.toContain('原文');

      const cursor = body<ErrorBody>(await api.get(api.a.keys.clerk, '/api/v1/invoices', { cursor: 'not-a-cursor' })).error;
      expect(cursor.message).toBe('查询条件 cursor 无效：不是本接口返回的分页游标，请使用上一页返回的 next_cursor');
      expect(cursor.message_en).toBe('Query parameter cursor is invalid: not a cursor this API returned');
    });

    it('accepts a body declared UTF-8, in any spelling, and one that starts with a byte-order mark', async () => {
      const before = await api.countInvoices(api.a.id);
      for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;charset=utf8']) {
        expect((await api.issue(api.a.keys.clerk, changed(() => {}), { 'content-type': type })).statusCode, type).toBe(201);
      }
      expect((await api.issue(api.a.keys.clerk, `\ufeff${changed(() => {})}`)).statusCode).toBe(201);
      expect(await api.countInvoices(api.a.id)).toBe(before + 4);
    });

    it('says what is wrong with text that is not UTF-8 and what to do, in both languages', async () => {
      const gbk = body<ErrorBody>(await api.issue(api.a.keys.clerk, gbkBytes(changed(() => {})))).error;
      expect(gbk.message_en).toBe('body is not UTF-8 text');
      expect(gbk.message).toContain('UTF-8');
      expect([gbk.remedy, gbk.remedy_en]).toEqual([expect.stringContaining('UTF-8'), expect.stringContaining('Save the file as UTF-8')]);

      const declared = body<ErrorBody>(await api.issue(api.a.keys.clerk, changed(() => {}), { 'content-type': 'application/json; charset=gbk' })).error;
      expect(declared.message_en).toBe('Unsupported content type: application/json; charset=gbk');
      expect(declared.details).toEqual([{ field: 'content-type', issue: 'charset gbk: only UTF-8 is accepted' }]);
      expect(declared.remedy_en).toContain('charset=utf-8');

      const garbled = body<ErrorBody>(await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name: '𬌗深圳\ufffd公司' } }))).error;
      expect(garbled.details).toEqual([{ field: 'buyer.name', issue: expect.stringMatching(/^replacement character U\+FFFD \(�\) at position 4: .*UTF-8/) }]);
      const surrogate = body<ErrorBody>(await api.issue(api.a.keys.clerk, sampleInvoice({ remarks: '备注\udc00' }))).error;
      expect(surrogate.details).toEqual([{ field: 'remarks', issue: 'half of a character (lone surrogate U+DC00) at position 3' }]);
    });

    it('refuses a NUL character anywhere, in a body, a query or a login, with 1014 naming the field', async () => {
      const issued = await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name: 'a\u0000b' } }));
      expect([issued.statusCode, body<ErrorBody>(issued).error.code, body<ErrorBody>(issued).error.details[0]?.field]).toEqual([422, 1014, 'buyer.name']);
      const queried = await api.get(api.a.keys.clerk, '/api/v1/invoices', { buyer_name: '\u0000' });
      expect([queried.statusCode, body<ErrorBody>(queried).error.code, body<ErrorBody>(queried).error.details[0]?.field]).toEqual([422, 1014, 'buyer_name']);
      const login = await api.inject({ method: 'POST', url: '/api/v1/session', payload: { username: 'x\u0000', password: 'whatever-123' } });
      expect([login.statusCode, body<ErrorBody>(login).error.code]).toEqual([422, 1014]);
    });

    it('lists every wrong line in details, not only the first', async () => {
      const payload = changed((i) => {
        line(i, 0).quantity = '0';
        line(i, 2).tax_rate = '0.07';
      });
      const { error } = body<ErrorBody>(await api.issue(api.a.keys.clerk, payload));
      expect(error.code).toBe(1008);
      expect(error.details.map((d) => d.field)).toEqual(['lines[0].quantity', 'lines[2].tax_rate']);
    });

    it('echoes a well-formed X-Request-Id and replaces a hostile one', async () => {
      const echoed = await api.issue(api.a.keys.clerk, '{', { 'x-request-id': 'pos-till-0001' });
      expect(body<ErrorBody>(echoed).error.request_id).toBe('pos-till-0001');
      const replaced = await api.issue(api.a.keys.clerk, '{', { 'x-request-id': '<script>alert(1)</script>' });
      expect(body<ErrorBody>(replaced).error.request_id).toMatch(/^[0-9a-f-]{36}$/);
    });

    describe('hostile and unusual text is data', () => {
      const injection = "x'); DROP TABLE invoices;--";

      it('keeps quotes, backslashes and escape-looking text verbatim through storage, and the chain verifies', async () => {
        // Each table's rows reach PostgreSQL as JSON (issue-writes.ts): what JSON and array literals escape.
        const name = '甲"乙\\丙\\"丁\\u0041{"a":[1]}';
        const remarks = 'line \\n not a newline, "quoted", \\\\ two, \\t tab';
        const response = await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name, tax_id: '' }, remarks }));
        expect(response.statusCode, response.body).toBe(201);
        const stored = body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${body(response).number}`));
        expect({ name: stored.buyer.name, remarks: stored.remarks, digest: stored.digest }).toEqual({ name, remarks, digest: body(response).digest });
        expect((await verifyChains(api.ports, [api.a.id]))[0]!.breaks).toEqual([]);
      });

      it('stores SQL-looking text verbatim and finds it with the same text as a filter', async () => {
        const before = await api.countInvoices(api.a.id);
        const response = await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name: injection, tax_id: '' }, remarks: "1' OR '1'='1" }));
        expect(response.statusCode).toBe(201);
        const invoice = body(response);
        expect(invoice.buyer.name).toBe(injection);
        expect(invoice.remarks).toBe("1' OR '1'='1");

        const found = await api.get(api.a.keys.clerk, '/api/v1/invoices', { buyer_name: injection });
        expect(found.statusCode).toBe(200);
        expect(body(found).items.map((i: { number: string }) => i.number)).toEqual([invoice.number]);
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`)).buyer.name).toBe(injection);

        for (const filter of ["' OR 1=1 --", "'; DELETE FROM invoices; --", '%\' OR \'%\'=\'']) {
          const response = await api.get(api.a.keys.clerk, '/api/v1/invoices', { buyer_name: filter, buyer_tax_id: filter });
          expect(response.statusCode, filter).toBe(200);
          expect(body(response).items, filter).toEqual([]);
        }
        const asSearch = await api.get(api.a.keys.clerk, '/api/v1/saved-buyers', { q: injection });
        expect(asSearch.statusCode).toBe(200);

        // The tables are intact: everything issued is still there, and issuing still works.
        expect(await api.countInvoices(api.a.id)).toBe(before + 1);
        expect((await api.issue(api.a.keys.clerk, sampleInvoice())).statusCode).toBe(201);
        expect(await api.countInvoices(api.a.id)).toBe(before + 2);
      });

      it('keeps full-width parentheses in a registered company name exactly', async () => {
        const name = '中电科技（北京）有限公司';
        const invoice = body(await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name } })));
        expect(invoice.buyer.name).toBe(name);
        expect(body(await api.get(api.a.keys.clerk, `/api/v1/invoices/${invoice.number}`)).buyer.name).toBe(name);
        expect(body(await api.get(api.a.keys.clerk, '/api/v1/invoices', { buyer_name: '（北京）' })).items.map((i: { number: string }) => i.number)).toEqual([invoice.number]);

        const saved = body(await api.inject({ method: 'PUT', url: '/api/v1/saved-buyers', headers: { authorization: `Bearer ${api.a.keys.clerk}` }, payload: { name } }));
        expect(saved.name).toBe(name);
      });

      it('refuses a character the invoice font lacks wherever it would be printed, naming the field, the character and what to do', async () => {
        const before = await api.countInvoices(api.a.id);
        const { error } = body<ErrorBody>(await api.issue(api.a.keys.clerk, sampleInvoice({ buyer: { name: '刘䶮𬌗𠀀龘㐀商行' } })));
        expect(error).toMatchObject({
          code: 1025,
          message: 'buyer.name 第 4 个字符“𠀀”（U+20000）无法打印在发票上',
          message_en: 'Field buyer.name: the character 𠀀 (U+20000) at position 4 cannot be printed on the invoice',
          details: [{ field: 'buyer.name', issue: '𠀀 (U+20000) at position 4 is not in the invoice font' }],
        });
        expect(error.remedy_en).toContain('common variant');
        expect(await api.countInvoices(api.a.id)).toBe(before);

        // Saved buyers and items fill in invoices, a merchant's name is on every one of them, and an API key's label is their 开票人.
        const clerk = { authorization: `Bearer ${api.a.keys.clerk}` };
        const savedBuyer = await api.inject({ method: 'PUT', url: '/api/v1/saved-buyers', headers: clerk, payload: { name: '𠀀记' } });
        const item = { name: '*餐饮服务*𠮷野家', tax_code: '3070401000000000000', unit_price: '1', tax_rate: '0.06' };
        const savedItem = await api.inject({ method: 'PUT', url: '/api/v1/saved-items', headers: clerk, payload: item });
        expect([savedBuyer, savedItem].map((r) => [r.statusCode, body<ErrorBody>(r).error.code, body<ErrorBody>(r).error.details[0]!.field])).toEqual([
          [422, 1025, 'name'],
          [422, 1025, 'name'],
        ]);
        await expect(addMerchant(api.ports, { name: '𠀀记商行', taxId: validUscc(77_000_001), regionCode: '31' })).rejects.toMatchObject({ code: 1025, params: { field: 'name' } });
        await expect(createApiKey(api.ports, { merchantId: api.a.id, role: 'clerk', label: '收银台𠀀' })).rejects.toMatchObject({ code: 1025, params: { field: 'label' } });
      });

      it('keeps rare characters, full-width letters and mixed scripts as sent', async () => {
        const invoice: InvoiceBody = sampleInvoice({ buyer: { name: '刘䶮𬌗龘㐀商行', address: 'ＡＢＣ大厦 B座 12F' }, remarks: '备注：含税价；數量以實際為準' });
        const answered = body(await api.issue(api.a.keys.clerk, invoice));
        expect([answered.buyer.name, answered.buyer.address, answered.remarks]).toEqual([invoice.buyer.name, invoice.buyer.address, invoice.remarks]);
      });
    });
  });
}
