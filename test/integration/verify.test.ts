// R22: public verification (查验) answers genuine, voided or unknown, shows the buyer's tax ID
// masked, allows 5 verifications per invoice per day and a limited rate per IP, and does not
// vouch for a row whose content or signature was changed behind the application's back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, BUYER_TAX_ID, type Api } from '../support/http.js';
import { openSigner } from '../../src/app/signing-keys.js';
import { checkCode, printedCheckCode } from '../../src/domain/signature.js';

const DAY = 24 * 3600 * 1000;

for (const kind of storesUnderTest) {
  describe(`public verification on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let signer: Awaited<ReturnType<typeof openSigner>>;

    beforeAll(async () => {
      opened = await kind.open();
      signer = await openSigner(opened.store, { now: () => new Date() }, opened.dataDir);
      api = await startApi(opened.store, { signer, http: { documents: { publicUrl: 'https://fapiao.test', verifyPerIpPerMinute: 1000 } } });
    });
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
    });

    /** Issues an invoice and gives the four fields a verifier types in. */
    async function issued(remarks: string) {
      const response = await api.issue(api.a.keys.clerk, api.sampleInvoice({ remarks }));
      expect(response.statusCode).toBe(201);
      const view = body(response);
      return { number: view.number as string, date: (view.issued_at as string).slice(0, 10), total_with_tax: view.total_with_tax as string, check_code: checkCode(view.digest) };
    }
    const verify = (payload: object, ip = '203.0.113.7') => api.inject({ method: 'POST', url: '/api/v1/verify', payload, remoteAddress: ip });

    it('answers genuine with the buyer tax ID masked and nothing a verifier does not need', async () => {
      const fields = await issued('genuine');
      const response = await verify(fields);
      expect(response.statusCode).toBe(200);
      const answer = body(response);
      expect(answer.result).toBe('genuine');
      expect(answer.invoice).toMatchObject({ number: fields.number, total_with_tax: fields.total_with_tax, signed: true, verifications_today: 1 });
      expect(answer.invoice.buyer.tax_id_masked).toBe(`${BUYER_TAX_ID.slice(0, 4)}**********${BUYER_TAX_ID.slice(-4)}`);
      expect(response.body).not.toContain(BUYER_TAX_ID);
      for (const secret of ['ap@example.cn', '755900000000001', '深圳市南山区', '软件开发']) expect(response.body).not.toContain(secret);
    });

    it('answers voided for a voided invoice', async () => {
      const fields = await issued('to void');
      const voided = await api.inject({ method: 'POST', url: `/api/v1/invoices/${fields.number}/void`, headers: { authorization: `Bearer ${api.a.keys.owner}` }, payload: { reason: '开错了' } });
      expect(voided.statusCode).toBe(200);
      expect(body(await verify(fields)).result).toBe('voided');
    });

    it('answers unknown, and nothing more, when any field is wrong', async () => {
      const fields = await issued('unknown');
      const wrong = [
        { ...fields, check_code: fields.check_code.replace(/.$/, (d) => String((Number(d) + 1) % 10)) },
        { ...fields, total_with_tax: '1.00' },
        { ...fields, date: '2020-01-01' },
        { ...fields, number: '26319000000000999999' },
      ];
      for (const payload of wrong) {
        const response = await verify(payload);
        expect(response.statusCode).toBe(200);
        expect(body(response)).toEqual({ result: 'unknown', result_zh: '查无此票' });
      }
    });

    it('accepts the check code as printed, in groups of five, and with other grouping whitespace, like the /verify page', async () => {
      const fields = await issued('check code as printed');
      const grouped = (separator: string) => fields.check_code.replace(/(\d{5})(?=\d)/g, `$1${separator}`);
      expect(grouped(' ')).toBe(printedCheckCode(fields.check_code)); // "35650 02747 80224 23158", as on the PDF
      for (const check_code of [grouped(' '), ` ${grouped('\u3000')}\t`, grouped('\u00a0')]) {
        const response = await verify({ ...fields, check_code });
        expect([response.statusCode, body(response).result], JSON.stringify(check_code)).toEqual([200, 'genuine']);
      }
      const page = await api.inject({ method: 'GET', url: `/verify?${new URLSearchParams({ ...fields, check_code: grouped(' ') })}`, remoteAddress: '203.0.113.7' });
      expect(page.body).toContain('data-result="genuine"');

      // Whitespace is all that is dropped: still exactly 20 digits.
      // A letter for the first digit, always (replacing a '5' did nothing to a code without one, about one in eight).
      for (const check_code of [grouped(' ').slice(0, -1), grouped('-'), `S${grouped(' ').slice(1)}`]) {
        const refused = await verify({ ...fields, check_code });
        expect([refused.statusCode, body(refused).error.code, body(refused).error.details[0].field], check_code).toEqual([422, 1003, 'check_code']);
      }
    });

    it('refuses the 6th verification of an invoice on one day with 3020, and allows it the next day', async () => {
      const fields = await issued('limit');
      for (let i = 1; i <= 5; i++) expect(body(await verify(fields, `198.51.100.${i}`)).invoice.verifications_today).toBe(i);
      const sixth = await verify(fields, '198.51.100.6');
      expect(sixth.statusCode).toBe(429);
      expect(body(sixth).error.code).toBe(3020);
      api.clock.advance(DAY);
      expect(body(await verify(fields)).result).toBe('genuine');
    });

    it('shares the daily count between instances through the database', async () => {
      const fields = await issued('two instances');
      const other = await startApi(opened.store, { signer, clock: api.clock, http: { documents: { publicUrl: 'https://fapiao.test', verifyPerIpPerMinute: 1000 } } });
      try {
        for (let i = 1; i <= 3; i++) expect(body(await verify(fields)).invoice.verifications_today).toBe(i);
        await new Promise((resolve) => setTimeout(resolve, 600)); // this instance writes its counts (every 250 ms)
        const there = (payload: object) => other.inject({ method: 'POST', url: '/api/v1/verify', payload, remoteAddress: '203.0.113.9' });
        expect(body(await there(fields)).invoice.verifications_today).toBe(4);
        expect(body(await there(fields)).invoice.verifications_today).toBe(5);
        expect(body(await there(fields)).error.code).toBe(3020);
      } finally {
        await other.close();
      }
    });

    it('does not vouch for an invoice whose row was altered or whose signature was forged', async () => {
      const altered = await issued('altered');
      await opened.exec(`UPDATE invoice_records SET buyer_name = '冒名公司' WHERE number = '${altered.number}' AND merchant_id = '${api.a.id}'`);
      expect(body(await verify(altered)).result).toBe('unknown');

      const forged = await issued('forged');
      const other = await issued('other');
      // A real signature, but of another invoice: the signature does not fit this digest.
      await opened.exec(`UPDATE invoice_records SET signature = (SELECT signature FROM invoice_records WHERE number = '${other.number}' AND merchant_id = '${api.a.id}') WHERE number = '${forged.number}' AND merchant_id = '${api.a.id}'`);
      expect(body(await verify(forged)).result).toBe('unknown');
      expect(body(await verify(other)).result).toBe('genuine');
    });

    it('verifies from the QR code URL, as JSON for programs and as a page for people', async () => {
      const fields = await issued('qr');
      const token = `${fields.number}-${fields.date.replaceAll('-', '')}-${fields.total_with_tax.replace('.', '')}-${fields.check_code}`;
      const json = await api.inject({ method: 'GET', url: `/v/${token}`, headers: { accept: 'application/json' } });
      expect(body(json).result).toBe('genuine');
      const page = await api.inject({ method: 'GET', url: `/v/${token}` });
      expect(page.headers['content-type']).toContain('text/html');
      expect(page.body).toContain('发票有效');
      const bad = await api.inject({ method: 'GET', url: '/v/not-a-token', headers: { accept: 'application/json' } });
      expect(body(bad).error.code).toBe(1022);
    });

    it('refuses malformed requests with a coded error and counts nothing', async () => {
      const fields = await issued('bad input');
      const cases: Array<[object | string, number]> = [
        [{ ...fields, number: '123' }, 1003],
        [{ ...fields, total_with_tax: 'abc' }, 1011], // the amount fault, as for any amount
        [{ ...fields, extra: 1 }, 1004],
        [{ number: fields.number }, 1005],
        ['{"number":', 1002],
      ];
      for (const [payload, code] of cases) {
        const response = await api.inject({ method: 'POST', url: '/api/v1/verify', headers: { 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
        expect(response.statusCode, JSON.stringify(payload)).toBeGreaterThanOrEqual(400);
        expect(response.statusCode).toBeLessThan(500);
        expect(body(response).error.code, JSON.stringify(payload)).toBe(code);
      }
      expect(body(await verify(fields)).invoice.verifications_today).toBe(1);
    });

    it('publishes the public keys, current and retired', async () => {
      const keys = body(await api.inject({ method: 'GET', url: '/api/v1/keys' })).keys as Array<{ id: string; public_key_pem: string }>;
      expect(keys.map((k) => k.id)).toContain(signer.keyId());
      expect(keys.find((k) => k.id === signer.keyId())!.public_key_pem).toContain('BEGIN PUBLIC KEY');
    });
  });

  describe(`verification per IP on ${kind.name}`, () => {
    it('refuses an IP address beyond its verifications per minute with 7002, and others go on', async () => {
      const opened = await kind.open();
      const api = await startApi(opened.store, { http: { documents: { publicUrl: 'https://fapiao.test', verifyPerIpPerMinute: 3 } } });
      try {
        const payload = { number: '26319000000000000001', date: '2026-03-10', total_with_tax: '1.00', check_code: '0'.repeat(20) };
        const from = (ip: string) => api.inject({ method: 'POST', url: '/api/v1/verify', payload, remoteAddress: ip });
        for (let i = 0; i < 3; i++) expect((await from('192.0.2.1')).statusCode).toBe(200);
        const refused = await from('192.0.2.1');
        expect(refused.statusCode).toBe(429);
        expect(body(refused).error.code).toBe(7002);
        expect((await from('192.0.2.2')).statusCode).toBe(200);
      } finally {
        await api.close();
        await opened.cleanup();
      }
    });
  });
}
