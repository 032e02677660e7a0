// Group issuing (issue-batches.ts): requests of one merchant that arrive together are written in
// one transaction, and each is still decided on its own, in arrival order.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { issueInvoice, type IssueResult } from '../../src/app/issue-invoice.js';
import { ISSUE_BATCH_MAX } from '../../src/app/issue-batches.js';
import { setMerchantLimits } from '../../src/app/merchants.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { serializeContingencyTerms } from '../../src/domain/contingency.js';
import { Fault, faults } from '../../src/domain/faults.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';
import type { Ports, Store } from '../../src/app/ports.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { sampleInvoice, startApi, type Api } from '../support/http.js';

const sequenceOf = (number: string) => Number(number.slice(5));

/** A one-line invoice of `yuan` before tax (at 13 %). */
function priced(yuan: string): InvoiceRequest {
  const { buyer } = sampleInvoice();
  return {
    kind: 'normal', prices_include_tax: false, remarks: '',
    buyer: { name: buyer.name, tax_id: buyer.tax_id ?? '', address: '', phone: '', bank: '', account: '', email: '' },
    lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: yuan, tax_rate: '0.13' }],
  };
}

type Settled = { ok: true; result: IssueResult } | { ok: false; code: number | undefined };

/** The ports with a store whose reads before the lock (PostgreSQL) never find a key: as if another request stored it just after. */
const readingKeysTooEarly = (ports: Ports): Ports => {
  const { store } = ports;
  const readTooEarly: Store = { ...store, read: { ...store.read, idempotency: { ...store.read.idempotency, find: async () => new Map() } } };
  return { ...ports, store: readTooEarly };
};

/** The ports with a store whose reads before the lock (PostgreSQL) fail, as when the database is away a moment. */
const keysUnreadableEarly = (ports: Ports): Ports => {
  const { store } = ports;
  const failing: Store = { ...store, read: { ...store.read, idempotency: { ...store.read.idempotency, find: () => Promise.reject(new Error('Connection terminated unexpectedly')) } } };
  return { ...ports, store: failing };
};

for (const s of storesUnderTest) {
  describe(`issuing in batches (${s.name})`, () => {
    let opened: OpenedStore;
    let api: Api;
    const caller = () => ({ merchantId: api.a.id, role: 'clerk' as const, actor: 'pos-1' });
    // Submitted in the same turn of the event loop, so they form one batch in this order.
    const issueTogether = (requests: Array<{ request: InvoiceRequest; key?: string }>): Promise<Settled[]> =>
      Promise.all(requests.map(({ request, key }) => issueInvoice(api.ports, caller(), request, key).then(
        (result): Settled => ({ ok: true, result }),
        (error): Settled => ({ ok: false, code: error instanceof Fault ? error.spec.code : undefined }),
      )));

    beforeEach(async () => {
      opened = await s.open();
      api = await startApi(opened.store);
    });
    afterEach(async () => {
      await api.close();
      await opened.cleanup();
    });

    it('decides each request alone against the credit line, in arrival order, and gives numbers only to those issued', async () => {
      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: null, operatorCredit: '5000.00' });
      const settled = await issueTogether(['3000.00', '1500.00', '600.00', '500.00', '0.01'].map((yuan) => ({ request: priced(yuan) })));

      expect(settled.map((o) => (o.ok ? 'issued' : o.code))).toEqual(['issued', 'issued', 3004, 'issued', 3004]);
      const issued = settled.flatMap((o) => (o.ok ? [o.result.invoice] : []));
      expect(issued.map((invoice) => sequenceOf(invoice.number))).toEqual([1, 2, 3]);
      expect(issued.map((invoice) => invoice.chainIndex)).toEqual([1, 2, 3]);
      expect(await api.countInvoices(api.a.id)).toBe(3);
      expect((await api.ports.store.read.usage.get(api.a.id, 'M2026-03')).preTaxFen).toBe(500_000n);
      expect((await verifyChains(api.ports, [api.a.id]))[0]!.breaks).toEqual([]);
    });

    it('holds each kind\'s offline amount limit inside one batch while in contingency, counting the invoices before it', async () => {
      // ¥3,000 pre-tax of ordinary invoices offline; special invoices have no limit here.
      await api.ports.store.write(async (tx) => {
        await tx.terms.save(api.a.id, { contingencyJson: serializeContingencyTerms([{ kind: 'normal', maxOfflineHours: 2, maxOfflineAmountFen: 300_000n }]), grantedCreditFen: null, fetchedAt: '2026-03-10T09:00:00.000+08:00' });
        await tx.upstreamState.put({ merchantId: api.a.id, mode: 'contingency', since: '2026-03-10T09:00:00.000+08:00', lastError: 'down', lastSuccessAt: null, warnedAt: null, alertedAt: null });
      });
      const special = { ...priced('5000.00'), kind: 'special' as const };
      const settled = await issueTogether([priced('2000.00'), priced('1000.01'), special, priced('1000.00'), priced('0.01')].map((request) => ({ request })));

      expect(settled.map((o) => (o.ok ? 'issued' : o.code))).toEqual(['issued', 4022, 'issued', 'issued', 4022]);
      expect(await api.ports.store.read.usage.get(api.a.id, 'Bnormal')).toMatchObject({ invoiceCount: 2, preTaxFen: 300_000n });
      expect(await api.ports.store.read.usage.get(api.a.id, 'Bspecial')).toMatchObject({ invoiceCount: 1, preTaxFen: 500_000n });
    });

    it('makes one invoice of a key sent twice in one batch, and refuses the key with another body (3002)', async () => {
      const settled = await issueTogether([
        { request: priced('100.00'), key: 'till-7-0001' },
        { request: priced('100.00'), key: 'till-7-0001' },
        { request: priced('999.00'), key: 'till-7-0001' },
        { request: priced('200.00'), key: 'till-7-0002' },
      ]);

      const [first, again, otherBody, next] = settled as [Settled, Settled, Settled, Settled];
      expect(first).toMatchObject({ ok: true, result: { replayed: false } });
      expect(again).toMatchObject({ ok: true, result: { replayed: true } });
      if (!first.ok || !again.ok || !next.ok) throw new Error('expected issued');
      expect(again.result.invoice).toEqual(first.result.invoice);
      expect(otherBody).toEqual({ ok: false, code: 3002 });
      expect(sequenceOf(next.result.invoice.number)).toBe(2);
      expect(await api.countInvoices(api.a.id)).toBe(2);

      // Later, outside the batch, the key still gives back the same invoice.
      const later = await issueInvoice(api.ports, caller(), priced('100.00'), 'till-7-0001');
      expect(later.replayed).toBe(true);
      expect([later.invoice.number, later.invoice.digest]).toEqual([first.result.invoice.number, first.result.invoice.digest]);
    });

    /** A repeat of `key` (same body), `key` with another body and a fresh key, sent together: each result or fault code. */
    const repeatsAndFresh = (ports: Ports, key: string, freshKey: string) => {
      const outcome = (issuing: Promise<IssueResult>) => issuing.then((result) => result, (error: Fault) => error.spec.code);
      return Promise.all([
        outcome(issueInvoice(ports, caller(), priced('100.00'), key)),
        outcome(issueInvoice(ports, caller(), priced('200.00'), key)),
        outcome(issueInvoice(ports, caller(), priced('300.00'), freshKey)),
      ]);
    };

    // On PostgreSQL a batch's keys are read before the lock, so another request may store a key after
    // it was read as unused (another instance, a client's retry): every read before the lock misses
    // the key, the batch's write is refused by the unique key and nothing of it is stored, and the
    // batch run again reads its keys under the lock. Or the read fails (the database away a moment):
    // the keys are read under the lock, and no request fails. (On SQLite they are read there anyway.)
    for (const [what, early] of [['read as unused before the lock', readingKeysTooEarly], ['whose read before the lock failed', keysUnreadableEarly]] as const) {
      it(`gives back the invoice of a key ${what}, and refuses it with another body`, async () => {
        const first = await issueInvoice(api.ports, caller(), priced('100.00'), 'till-8-0001');

        const [again, otherBody, fresh] = await repeatsAndFresh(early(api.ports), 'till-8-0001', 'till-8-0002');

        expect(again).toMatchObject({ replayed: true, invoice: { number: first.invoice.number, digest: first.invoice.digest } });
        expect(otherBody).toBe(faults.IDEMPOTENCY_KEY_REUSED.code);
        expect(fresh).toMatchObject({ replayed: false });
        expect(sequenceOf((fresh as IssueResult).invoice.number)).toBe(2); // the refused write took no number
        expect(await api.countInvoices(api.a.id)).toBe(2);
        const [report] = await verifyChains(api.ports, [api.a.id]);
        expect(report).toMatchObject({ invoices: 2, breaks: [] });
      });
    }

    // A refused request stores no key, so no unique key would catch a repeat of one read as unused
    // before the lock: its key is read again before it is refused.
    it('gives back the invoice of a repeated key read as unused before the lock, although the merchant has reached its daily limit', async () => {
      await setMerchantLimits(api.ports, api.a.id, { dailyInvoiceLimit: 1, operatorCredit: null });
      const first = await issueInvoice(api.ports, caller(), priced('100.00'), 'till-9-0001'); // the day's last

      const [again, otherBody, fresh] = await repeatsAndFresh(readingKeysTooEarly(api.ports), 'till-9-0001', 'till-9-0002');

      expect(again).toMatchObject({ replayed: true, invoice: { number: first.invoice.number, digest: first.invoice.digest } });
      expect(otherBody).toBe(faults.IDEMPOTENCY_KEY_REUSED.code);
      expect(fresh).toBe(faults.DAILY_LIMIT_REACHED.code);
      expect(await api.countInvoices(api.a.id)).toBe(1);
    });

    // The merchant comes with the batch's context (on PostgreSQL its lock locks no row then).
    it('refuses a merchant that does not exist with 3006 and stores nothing', async () => {
      const nobody = { merchantId: 'm_none', role: 'clerk' as const, actor: 'pos-1' };
      const fault = await issueInvoice(api.ports, nobody, priced('100.00'), 'till-0-0001').then(() => undefined, (error: Fault) => error);
      expect(fault?.spec).toBe(faults.MERCHANT_NOT_FOUND);
      expect(await api.countInvoices('m_none')).toBe(0);
      expect(await opened.store.read.idempotency.find('m_none', ['till-0-0001'])).toEqual(new Map());
    });

    // A batch reads its context (the day's counters, the year's numbers) with the lock, before the
    // time of its invoices is read once the lock is granted; a lock granted after midnight needs the
    // new day's and, on New Year, the new year's.
    it('numbers from the new year\'s block and counts the new day when the lock is granted after midnight', async () => {
      const lastDay = { ...api.ports, clock: { now: () => new Date('2026-12-31T04:00:00.000Z') } };
      const before = await issueInvoice(lastDay, caller(), priced('100.00'));
      const readings = [new Date('2026-12-31T15:59:59.900Z'), new Date('2026-12-31T16:00:00.100Z')]; // 23:59:59.9, then 00:00:00.1 in Shanghai
      const acrossMidnight = { ...api.ports, clock: { now: () => new Date(readings.length > 1 ? readings.shift()! : readings[0]!) } };

      const { invoice } = await issueInvoice(acrossMidnight, caller(), priced('200.00'));

      expect(before.invoice.number.slice(0, 2)).toBe('26');
      expect(invoice.number.slice(0, 2)).toBe('27');
      expect(sequenceOf(invoice.number)).toBe(1); // the 2027 block's first number, not the 2026 block's second
      expect(invoice.issuedAt).toBe('2027-01-01T00:00:00.100+08:00');
      expect(await opened.store.read.usage.get(api.a.id, 'D2027-01-01')).toMatchObject({ invoiceCount: 1, preTaxFen: 20_000n });
      expect(await opened.store.read.usage.get(api.a.id, 'D2026-12-31')).toMatchObject({ invoiceCount: 1, preTaxFen: 10_000n });
    });

    it(`splits more than ${ISSUE_BATCH_MAX} waiting requests over several batches with numbers and chain gap-free`, async () => {
      const count = ISSUE_BATCH_MAX * 2 + 17;
      const settled = await issueTogether(Array.from({ length: count }, (_, i) => ({ request: priced(`${i + 1}.00`), key: `k-${i}` })));

      expect(settled.every((o) => o.ok)).toBe(true);
      const numbers = settled.map((o) => (o.ok ? sequenceOf(o.result.invoice.number) : 0));
      expect(numbers).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      expect(await api.countInvoices(api.a.id)).toBe(count);
      const [report] = await verifyChains(api.ports, [api.a.id]);
      expect(report).toMatchObject({ invoices: count, breaks: [] });
    });

    it("takes into a batch the requests that arrived while it waited for the merchant's lock", async () => {
      await issueTogether([{ request: priced('1.00') }]); // the merchant's first batch, before anything is held
      let transactions = 0;
      const write = api.ports.store.write.bind(api.ports.store);
      api.ports.store.write = (work) => {
        transactions += 1;
        return write(work);
      };
      // Another connection holds what a batch waits for: SQLite's write lock, PostgreSQL's row lock on the merchant.
      const { db } = opened.connect();
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      const holder = db.transaction().execute(async (trx) => {
        await sql`update merchants set name = name where id = ${api.a.id}`.execute(trx);
        held();
        await released;
      });
      try {
        await holding;
        const first = issueTogether([{ request: priced('2.00') }]);
        await new Promise((resolve) => setTimeout(resolve, 50)); // its batch is waiting for the lock
        const later = issueTogether([{ request: priced('3.00') }, { request: priced('4.00') }]);
        release();
        await holder;
        const settled = [...(await first), ...(await later)];

        expect(settled.map((o) => (o.ok ? sequenceOf(o.result.invoice.number) : o.code))).toEqual([2, 3, 4]);
        expect(transactions).toBe(1);
        expect((await verifyChains(api.ports, [api.a.id]))[0]!.breaks).toEqual([]);
      } finally {
        release();
        await holder.catch(() => undefined);
        await db.destroy();
      }
    });

    it('answers the waiting requests with the error when the write fails before it holds the lock (5001)', async () => {
      const write = api.ports.store.write.bind(api.ports.store);
      api.ports.store.write = () => Promise.reject(new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '1' })); // as when the lock never came
      let settled: Settled[];
      try {
        settled = await issueTogether([{ request: priced('1.00') }, { request: priced('2.00') }]);
      } finally {
        api.ports.store.write = write;
      }

      expect(settled).toEqual([{ ok: false, code: 5001 }, { ok: false, code: 5001 }]);
      const after = await issueTogether([{ request: priced('3.00') }]);
      expect(after.map((o) => (o.ok ? sequenceOf(o.result.invoice.number) : o.code))).toEqual([1]);
    });

    // PostgreSQL alone retries a transaction (a serialization failure or deadlock, a raced unique key).
    it.runIf(s.name === 'postgres')('issues the same requests when the database has the batch retried (40001)', async () => {
      await opened.exec(`create sequence refuse_once;
        create function refuse_once() returns trigger language plpgsql as $$ begin
          if nextval('refuse_once') = 1 then raise exception 'retry, says the test' using errcode = '40001'; end if;
          return null;
        end $$;
        create trigger refuse_once before insert on invoice_records for each statement execute function refuse_once()`);

      const settled = await issueTogether(['1.00', '2.00', '3.00'].map((yuan) => ({ request: priced(yuan) })));

      expect(settled.map((o) => (o.ok ? sequenceOf(o.result.invoice.number) : o.code))).toEqual([1, 2, 3]);
      expect(await api.countInvoices(api.a.id)).toBe(3);
      const { db } = opened.connect();
      try {
        const { rows } = await sql<{ last_value: string }>`select last_value from refuse_once`.execute(db);
        expect(Number(rows[0]!.last_value)).toBe(2); // refused once, then let through
      } finally {
        await db.destroy();
      }
      expect((await verifyChains(api.ports, [api.a.id]))[0]!.breaks).toEqual([]);
    });

    it('answers every request of a batch the database refuses with the error, stores none of them, and numbers the next batch on without a gap', async () => {
      const first = (await issueTogether([{ request: priced('1.00') }]))[0]!;
      // The batch fails at its upload records, after its invoices were written (on PostgreSQL the
      // write goes out with the commit: pg-send-with-next.ts). A trigger, not a dropped table:
      // dropping one races other tests' migrations reading the catalogue.
      await opened.exec(s.name === 'sqlite'
        ? "create trigger refuse_records before insert on upload_records begin select raise(abort, 'refused by the test'); end"
        : "create function refuse_records() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$; create trigger refuse_records before insert on upload_records for each row execute function refuse_records()");

      const settled = await issueTogether(Array.from({ length: 5 }, (_, i) => ({ request: priced(`${i + 1}.00`), key: `lost-${i}` })));

      expect(settled.every((o) => !o.ok)).toBe(true);
      expect(await api.countInvoices(api.a.id)).toBe(1);
      expect((await api.ports.store.read.idempotency.find(api.a.id, ['lost-0'])).size).toBe(0);
      expect((await api.ports.store.read.numberBlocks.reserve(api.a.id, 2026)).remaining).toBe((await api.ports.store.read.numberBlocks.list(api.a.id, 2026)).reduce((n, b) => n + b.last - b.first + 1, 0) - 1);

      await opened.exec(s.name === 'sqlite' ? 'drop trigger refuse_records' : 'drop trigger refuse_records on upload_records; drop function refuse_records()');
      const again = await issueTogether(Array.from({ length: 5 }, (_, i) => ({ request: priced(`${i + 1}.00`), key: `lost-${i}` })));
      const firstSequence = first.ok ? sequenceOf(first.result.invoice.number) : NaN;
      expect(again.map((o) => (o.ok && !o.result.replayed ? sequenceOf(o.result.invoice.number) : o))).toEqual([1, 2, 3, 4, 5].map((n) => firstSequence + n));
      expect((await verifyChains(api.ports, [api.a.id]))[0]!.breaks).toEqual([]);
    });
  });
}
