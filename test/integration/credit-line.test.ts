// The month's credit line (授信额度, R9) from its two sources, on every database, against the real
// sandbox tax service: its grant (PUT /admin/terms/:seller, fetched by the terms refresh) binds and
// is lifted by a null; the operator's own limit is kept apart and binds when lower; the merchant
// and the status say both and which binds; and a database from before migration 009 keeps the
// limit it had.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addMerchant, setMerchantLimits } from '../../src/app/merchants.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import type { Ports, Store } from '../../src/app/ports.js';
import { refreshTerms } from '../../src/app/upstream-upkeep.js';
import { effectiveCreditLine } from '../../src/domain/credit-line.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';
import { Fault } from '../../src/domain/faults.js';
import { migrator } from '../../src/store/migrate.js';
import { body, oneLine, sampleInvoice, startApi, validUscc, type Api } from '../support/http.js';
import { grantTestNumbers } from '../support/numbers.js';
import { startTestSandbox, type TestSandbox } from '../support/sandbox.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { undoneDownTo } from '../support/migrations.js';

const preTax = (yuan: string) => sampleInvoice({ lines: [oneLine('1', yuan, '0.13')] });
const request = (yuan: string): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: '',
  buyer: { name: '张三', tax_id: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*餐饮服务*餐费', tax_code: '3070401000000000000', spec: '', unit: '次', quantity: '1', unit_price: yuan, tax_rate: '0.06' }],
});
let seed = 61_000_000 + Math.floor(Math.random() * 1_000_000) * 2;

for (const kind of storesUnderTest) {
  describe(`the credit line from the tax service and the operator on ${kind.name}`, () => {
    let sandbox: TestSandbox;
    let opened: OpenedStore;
    let api: Api;

    beforeAll(async () => {
      sandbox = await startTestSandbox();
    });
    afterAll(() => sandbox.close());
    beforeEach(async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
    });
    afterEach(async () => {
      await api.close();
      await opened.cleanup();
    });

    /** The tax service grants this (pre-tax fen, or null for none); the terms refresh fetches it. */
    const grant = async (fen: string | null) => {
      await sandbox.setTerms(api.a.record.taxId, { monthly_credit_fen: fen, contingency: [] });
      await refreshTerms(api.ports, sandbox.client(opened.store, api.clock), (await opened.store.read.merchants.get(api.a.id))!);
    };
    const issue = (yuan: string) => api.issue(api.a.keys.clerk, preTax(yuan));
    const creditLine = async () => body(await api.get(api.a.keys.clerk, '/api/v1/merchant')).credit_line;

    it('refuses past the tax service\'s grant, naming it, and issues again once the tax service lifts it (null)', async () => {
      await grant('200000'); // ¥2,000
      expect(await creditLine()).toEqual({ limit: '2000.00', binding: 'tax_service', tax_service: '2000.00', operator: null });
      expect((await issue('1500.00')).statusCode).toBe(201);
      const refused = await issue('600.00');
      expect(refused.statusCode).toBe(422);
      expect(body(refused).error).toMatchObject({
        code: 3004,
        message: '超出本月授信额度：生效的是税务机关核定的授信额度 2000.00 元（平台运营方限额：未设置）；剩余 500.00 元，本张发票 600.00 元（不含税）',
        message_en: "Monthly credit line exceeded: the tax service's grant of 2000.00 yuan binds (operator's limit: none); 500.00 yuan left, this invoice 600.00 yuan (before tax)",
      });
      expect(body(refused).error.remedy_en).toContain('apply to the tax office');

      await grant(null);
      expect(await creditLine()).toEqual({ limit: null, binding: null, tax_service: null, operator: null });
      expect((await issue('600.00')).statusCode).toBe(201);
      expect(await api.countInvoices(api.a.id)).toBe(2);
    });

    it('lets a lower operator\'s limit bind, keeps it through terms refreshes, and falls back to the grant when the operator lifts it', async () => {
      await grant('200000');
      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '1000.00' });
      await grant('200000'); // a refresh writes the grant only: the operator's limit stays
      expect(await creditLine()).toEqual({ limit: '1000.00', binding: 'operator', tax_service: '2000.00', operator: '1000.00' });
      expect((await issue('800.00')).statusCode).toBe(201);
      const refused = body(await issue('300.00')).error;
      expect(refused.code).toBe(3004);
      expect(refused.message_en).toContain("the operator's limit of 1000.00 yuan binds (tax service's grant: 2000.00 yuan); 200.00 yuan left");
      expect(refused.message).toContain('生效的是平台运营方设定的限额 1000.00 元（税务机关授信额度：2000.00 元）');
      const status = body(await api.get(api.a.keys.clerk, '/api/v1/status'));
      expect(status.credit_line).toEqual({ limit: '1000.00', binding: 'operator', tax_service: '2000.00', operator: '1000.00', month: '2026-03', used: '800.00', remaining: '200.00' });

      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: null });
      expect(await creditLine()).toEqual({ limit: '2000.00', binding: 'tax_service', tax_service: '2000.00', operator: null });
      expect((await issue('300.00')).statusCode).toBe(201);

      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '2000.00' });
      expect((await creditLine()).binding).toBe('both');
      expect(body(await issue('900.01')).error.message_en).toContain("the tax service's grant and the operator's limit are both 2000.00 yuan; 900.00 yuan left");
    });

    it('lets the grant bind when it is the lower one, and the operator\'s limit alone once the tax service lifts its grant', async () => {
      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '1000.00' });
      await grant('50000'); // ¥500
      expect((await creditLine()).binding).toBe('tax_service');
      expect(body(await issue('500.01')).error.code).toBe(3004);
      await grant(null);
      expect(await creditLine()).toEqual({ limit: '1000.00', binding: 'operator', tax_service: null, operator: '1000.00' });
      expect((await issue('1000.00')).statusCode).toBe(201);
      expect(body(await issue('0.01')).error.message_en).toContain("the operator's limit of 1000.00 yuan binds (tax service's grant: none)");
    });
  });

  describe(`migration 009 (credit sources) on ${kind.name}`, () => {
    let opened: OpenedStore;
    let reopened: Store | undefined;
    afterEach(async () => {
      await reopened?.close();
      await opened.cleanup();
    });

    it('moves the one stored credit line to the source the audit log says set it, and the same limit still binds', async () => {
      opened = await kind.open();
      const clock = { now: () => new Date('2026-03-10T02:00:00Z') };
      const ports: Ports = { store: opened.store, clock };
      const merchants: Record<string, string> = {};
      for (const name of ['neverFetched', 'grantedLast', 'operatorLast', 'unclear', 'keptThenGranted', 'noCredit']) {
        merchants[name] = (await addMerchant(ports, { name: '销售方', taxId: validUscc((seed += 2)), regionCode: '31' })).id;
      }
      const { db, schema } = opened.connect();
      try {
        const steps = migrator(db, schema);
        const down = await steps.migrateTo('008-invoice-states');
        expect(down.results?.map((r) => [r.migrationName, r.status])).toEqual(undoneDownTo('008-invoice-states'));

        // The single column as the old code left it, with the audit entries the old code wrote.
        const old = async (merchant: string, fen: string | null, fetched: boolean, changes: Array<['limits' | 'terms', string | null]>) => {
          await db.updateTable('merchants').set({ monthly_credit_fen: fen, terms_fetched_at: fetched ? '2026-03-01T00:00:00.000+08:00' : null }).where('id', '=', merchant).execute();
          for (const [who, value] of changes) {
            await db.insertInto('audit_log').values({
              merchant_id: merchant, at: '2026-03-01T00:00:00.000+08:00', actor: who === 'limits' ? 'cli:ops' : 'tax-service',
              action: who === 'limits' ? 'merchant.limits_changed' : 'merchant.terms_changed', subject: merchant,
              detail: JSON.stringify(who === 'limits' ? { dailyInvoiceLimit: null, monthlyCreditFen: value } : { contingency: [], monthlyCreditFen: value }),
              prev_hash: 'x', hash: 'x',
            }).execute();
          }
        };
        await old(merchants.neverFetched!, '100000', false, [['limits', '100000']]);
        await old(merchants.grantedLast!, '200000', true, [['limits', '100000'], ['terms', '200000']]); // the tax service changed it last
        await old(merchants.operatorLast!, '100000', true, [['terms', '200000'], ['limits', '100000']]); // the operator set it after
        await old(merchants.unclear!, '300000', true, [['terms', '300000']]); // the value from `merchant add`, kept, or a first grant
        await old(merchants.keptThenGranted!, '400000', true, [['limits', '300000'], ['terms', '300000'], ['terms', '400000']]);
        await old(merchants.noCredit!, null, true, [['terms', null]]);

        const up = await steps.migrateToLatest();
        expect(up.error).toBeUndefined();
        const columns = await db.selectFrom('merchants').select(['id', 'operator_credit_fen', 'granted_credit_fen']).where('id', 'in', Object.values(merchants)).execute();
        const byName = Object.fromEntries(Object.entries(merchants).map(([name, id]) => {
          const row = columns.find((c) => c.id === id)!;
          return [name, [row.operator_credit_fen === null ? null : String(row.operator_credit_fen), row.granted_credit_fen === null ? null : String(row.granted_credit_fen)]];
        }));
        expect(byName).toEqual({
          neverFetched: ['100000', null],
          grantedLast: [null, '200000'],
          operatorLast: ['100000', null],
          unclear: ['300000', '300000'], // both: the next refresh sets the grant; the operator's copy keeps the limit
          keptThenGranted: [null, '400000'],
          noCredit: [null, null],
        });

        // Behaviour kept: the limit that applies is the one column's, and issuing stops there.
        reopened = await opened.reopen(); // the first store has statements prepared for the old columns
        const before = { neverFetched: 100_000n, grantedLast: 200_000n, operatorLast: 100_000n, unclear: 300_000n, keptThenGranted: 400_000n, noCredit: null };
        for (const [name, fen] of Object.entries(before)) {
          expect(effectiveCreditLine((await reopened.read.merchants.get(merchants[name]!))!)?.limitFen ?? null).toBe(fen);
        }
        const clerk = { merchantId: merchants.grantedLast!, role: 'clerk' as const, actor: 'pos' };
        const after: Ports = { store: reopened, clock };
        await grantTestNumbers(after, merchants.grantedLast!);
        await issueInvoice(after, clerk, request('2000.00'));
        const refused = await issueInvoice(after, clerk, request('0.01')).catch((e: unknown) => e);
        expect(refused instanceof Fault && refused.spec.code).toBe(3004);
        expect((refused as Fault).message).toContain("the tax service's grant of 2000.00 yuan binds");

        // And back: one column holding the lower of the two.
        await reopened.close();
        reopened = undefined;
        expect((await steps.migrateTo('008-invoice-states')).error).toBeUndefined();
        const back = await db.selectFrom('merchants').select(['id', 'monthly_credit_fen']).where('id', '=', merchants.unclear!).execute();
        expect(String(back[0]!.monthly_credit_fen)).toBe('300000');
        expect((await steps.migrateToLatest()).error).toBeUndefined();
      } finally {
        await db.destroy();
      }
    });
  });
}
