// Voids (作废) reach the tax service, on every store, against the real sandbox: a void after the
// upload is recorded there; an invoice voided before its upload ran is uploaded first and voided
// after, in that order, and its upload state does not stay pending; a void sent while the tax
// service is down waits and arrives after it heals, none lost; a repeated void is harmless; a
// refusal is shown with what to do; an invoice the tax service rejected needs no void there.
import { beforeEach, describe, expect, it } from 'vitest';
import { createOutboxRunner, type OutboxHandler, type OutboxRunner } from '../../src/app/outbox-runner.js';
import { uploadHandler } from '../../src/app/upload-worker.js';
import { reconcile, resolveDifference } from '../../src/app/reconcile.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { voidHandler } from '../../src/app/void-worker.js';
import type { Caller } from '../../src/domain/access.js';
import { shanghaiDate, shanghaiTimestamp } from '../../src/domain/time.js';
import { body as json } from '../support/http.js';
import { storesUnderTest } from '../support/stores.js';
import { upstreamFixture } from '../support/upstream-fixture.js';

for (const kind of storesUnderTest) {
  describe(`voids reach the tax service on ${kind.name}`, () => {
    const t = upstreamFixture(kind);
    const { ports, seller, drain } = t;
    const owner = (): Caller => ({ merchantId: t.api.a.id, role: 'owner', actor: 'test' });
    const quick = { backoffMs: 1, maxBackoffMs: 5 };
    const runner = (handler: OutboxHandler) => t.keep(createOutboxRunner(ports(), handler, { owner: `test-${handler.topic}`, batchSize: 1000, leaseMs: 30_000, ...quick }));
    let uploads: OutboxRunner;
    let voids: OutboxRunner;
    const issue = async () => {
      const response = await t.api.issue(t.api.a.keys.clerk, t.api.sampleInvoice());
      expect(response.statusCode, response.body).toBe(201);
      return json(response).number as string;
    };
    const voidIt = async (number: string) => {
      const response = await t.api.inject({ method: 'POST', url: `/api/v1/invoices/${number}/void`, headers: { authorization: `Bearer ${t.api.a.keys.owner}` }, payload: { reason: '开错了' } });
      expect(response.statusCode, response.body).toBe(200);
      return json(response);
    };
    const invoice = async (number: string) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`));
    const status = async () => json(await t.api.get(t.api.a.keys.owner, '/api/v1/status'));
    const counters = async (number: string) => (await t.sandbox.counters(seller())).get(number);
    const chainIntact = async () => expect((await verifyChains(ports(), [t.api.a.id]))[0]!.breaks).toEqual([]);

    beforeEach(() => {
      uploads = runner(uploadHandler(ports(), t.taxService, quick));
      voids = runner(voidHandler(ports(), t.taxService, quick));
    });

    it('delivers a void after the upload: the tax service holds the invoice as voided, and the invoice says the void reached it', async () => {
      const number = await issue();
      await drain(uploads);
      const voided = await voidIt(number);
      expect(voided).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'pending', reached_tax_service: false, waiting_for: 'delivery' } });
      expect(await status()).toMatchObject({ voids: { pending: 1, refused: 0 } });

      await drain(voids);
      const after = await invoice(number);
      expect(after).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'reported', reached_tax_service: true, waiting_for: null, code: null } });
      expect(await t.taxService.status(seller(), number)).toMatchObject({ known: true, state: 'voided', voidedAt: after.status_changed_at });
      expect(await counters(number)).toMatchObject({ accepted: 1, void_requests: 1, voids: 1, void_refusals: 0 });
      expect(await status()).toMatchObject({ voids: { pending: 0, refused: 0 } });
      await chainIntact();
    });

    it('reports a void again once reconciliation has re-uploaded the invoice the tax service lost, and only after its acceptance', async () => {
      const number = await issue();
      const at = shanghaiTimestamp(t.api.clock.now());
      await t.opened.store.write(async (tx) => { // its upload went through as far as we knew; the tax service lost it since
        for (const job of await tx.outbox.claim({ topic: 'invoice.upload', owner: 'lost', now: at, leaseUntil: at, limit: 100 })) await tx.outbox.complete(job.id, 'lost', at);
        await tx.uploads.reduceBacklog(t.api.a.id, 'normal', { count: 1, preTaxFen: BigInt(Math.round(Number((await invoice(number)).total_amount) * 100)) }, null);
        await tx.invoices.setStatus(t.api.a.id, number, { status: 'uploaded', at, reason: null });
      });
      await voidIt(number);
      await drain(voids);
      expect(await invoice(number)).toMatchObject({ void_report: { state: 'refused', reason: expect.stringContaining('INVOICE_UNKNOWN') } });

      // The remedy: reconcile and upload it again.
      const ops = { ...ports(), taxService: t.taxService };
      const { items } = await reconcile(ops, owner(), shanghaiDate(t.api.clock.now()));
      await resolveDifference(ops, owner(), items.find((i) => i.number === number && i.difference === 'missing_upstream')!.id, { action: 'reupload' });
      expect(await invoice(number)).toMatchObject({ status: 'voided', upload: { state: 'pending' }, void_report: { state: 'pending', waiting_for: 'upload' } });
      const refusedOnce = await counters(number);
      expect(refusedOnce).toMatchObject({ submissions: 0, void_requests: 1, void_refusals: 1 });
      expect(await voids.runOnce()).toBe(1); // waits for the upload: nothing sent
      expect(await counters(number)).toEqual(refusedOnce);

      await drain(uploads);
      await drain(voids);
      expect(await invoice(number)).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'reported', reached_tax_service: true } });
      expect(await counters(number)).toMatchObject({ accepted: 1, voids: 1 });
      expect(await t.taxService.status(seller(), number)).toMatchObject({ known: true, state: 'voided' });
      expect(await status()).toMatchObject({ voids: { pending: 0, refused: 0 }, backlog: { count: 0 } });
      await chainIntact();
    });

    it('uploads an invoice voided before its upload ran first, then voids it, in that order; its upload state does not stay pending', async () => {
      const number = await issue();
      const voided = await voidIt(number);
      expect(voided).toMatchObject({ upload: { state: 'pending' }, void_report: { state: 'pending', waiting_for: 'upload' } });

      // The void worker comes first: it sends nothing while the tax service does not hold the invoice.
      expect(await voids.runOnce()).toBe(1);
      expect(await counters(number)).toBeUndefined();
      // Reconciliation counts it as on its way, not as a difference.
      const today = shanghaiDate(t.api.clock.now());
      expect((await reconcile({ ...ports(), taxService: t.taxService }, owner(), today)).report).toMatchObject({ pending: 1, differences: 0 });

      // The upload sends the invoice as it was issued; its acceptance makes the waiting void due at once.
      await drain(uploads);
      expect(await invoice(number)).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'pending', waiting_for: 'delivery' } });
      expect(await voids.runOnce()).toBe(1); // the same moment: no waiting out a retry delay

      const c = await counters(number);
      expect(c).toMatchObject({ submissions: 1, accepted: 1, void_requests: 1, voids: 1, void_refusals: 0 }); // a void before the upload would have been refused
      expect(c!.accepted_at! <= c!.voided_recorded_at!).toBe(true);
      expect(await invoice(number)).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'reported', reached_tax_service: true } });
      expect(await status()).toMatchObject({ backlog: { count: 0 }, voids: { pending: 0 } });
      expect((await reconcile({ ...ports(), taxService: t.taxService }, owner(), today)).report).toMatchObject({ matched: 1, pending: 0, differences: 0 });
      await chainIntact();
    });

    it.each(['down', 'error', 'garbage'])('keeps voids sent while the tax service is out (%s) and delivers every one after it heals', async (mode) => {
      const numbers = [await issue(), await issue(), await issue()];
      await drain(uploads);
      await t.sandbox.fault(mode);
      for (const number of numbers) await voidIt(number);
      const outage = { failure: { name: expect.stringMatching(/^Fault 400[1-6]$/) } }; // unreachable, timeout, protocol error, server error
      await expect(voids.runOnce()).rejects.toMatchObject(outage);
      t.api.clock.advance(60_000);
      await expect(voids.runOnce()).rejects.toMatchObject(outage);
      expect(await status()).toMatchObject({ mode: 'contingency', voids: { pending: 3 } });
      for (const number of numbers) expect((await invoice(number)).void_report).toMatchObject({ state: 'pending', waiting_for: 'delivery' });

      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(voids);
      for (const number of numbers) {
        expect((await invoice(number)).void_report).toMatchObject({ state: 'reported' });
        expect(await counters(number)).toMatchObject({ accepted: 1, voids: 1, void_refusals: 0 });
      }
      expect(await status()).toMatchObject({ mode: 'online', voids: { pending: 0 } });
      await chainIntact();
    });

    it('gives a void the circuit refused back due at once: it reached nobody, so no backoff', async () => {
      const number = await issue();
      await drain(uploads);
      await voidIt(number);
      const client = await t.clientWithOpenCircuit();
      const slow = { backoffMs: 60_000, maxBackoffMs: 60_000 };
      // Claims while the circuit is open (as a lane does that claimed just before it opened).
      const eager = t.keep(createOutboxRunner(ports(), { ...voidHandler(ports(), client, slow), notBefore: undefined }, { owner: 'eager', batchSize: 10, leaseMs: 30_000 }));
      expect(await eager.runOnce()).toBe(1); // refused: a short pause for the lane, not a failure
      while (client.circuit().state !== 'half_open') await new Promise((resolve) => setTimeout(resolve, 20)); // the store's clock has not moved
      expect(await runner(voidHandler(ports(), client, slow)).runOnce()).toBe(1); // due again at once, not a minute later
      expect(await invoice(number)).toMatchObject({ void_report: { state: 'reported', reached_tax_service: true } });
    });

    it('sends a void again when its answer was lost, harmlessly: the tax service records it once', async () => {
      const number = await issue();
      await drain(uploads);
      await voidIt(number);
      await t.sandbox.fault('lose_response'); // processed and committed, the answer never arrives
      await expect(voids.runOnce()).rejects.toBeDefined();
      expect((await invoice(number)).void_report).toMatchObject({ state: 'pending' });
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(voids);
      expect((await invoice(number)).void_report).toMatchObject({ state: 'reported' });
      const c = await counters(number);
      expect(c!.void_requests).toBeGreaterThanOrEqual(2);
      expect(c).toMatchObject({ voids: 1, void_refusals: 0 });
      // And by hand: the same void once more answers already_voided, from the first void's time.
      const voidedAt = (await invoice(number)).status_changed_at;
      expect(await t.taxService.voidInvoice(seller(), number, { reason: '开错了', voidedAt })).toEqual({ number, result: 'already_voided', voidedAt });
      expect(await counters(number)).toMatchObject({ voids: 1 });
    });

    it('shows a void the tax service refuses with 4026 and what to do, raises an alert, and does not send it again', async () => {
      const number = await issue();
      await drain(uploads);
      await t.sandbox.fault('reject');
      await voidIt(number);
      await drain(voids);
      expect((await invoice(number)).void_report).toMatchObject({
        state: 'refused', reached_tax_service: false, code: 4026, reason: expect.stringContaining('SANDBOX_RULE'), remedy: expect.stringContaining('红字发票'),
      });
      expect(await status()).toMatchObject({ voids: { pending: 0, refused: 1 } });
      const alerts = json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items;
      expect(alerts.map((a: { kind: string; subject: string }) => [a.kind, a.subject])).toContainEqual(['void.refused', number]);
      await t.sandbox.clear();
      t.api.clock.advance(10 * 60_000);
      expect(await voids.runOnce()).toBe(0);
      expect(await counters(number)).toMatchObject({ void_requests: 1, voids: 0, void_refusals: 1 });
      await chainIntact();
    });

    it('sends no void for an invoice the tax service rejected: it never held it as valid', async () => {
      await t.sandbox.fault('reject');
      const number = await issue();
      await drain(uploads);
      await t.sandbox.clear();
      await voidIt(number);
      await drain(voids);
      expect(await invoice(number)).toMatchObject({ status: 'voided', upload: { state: 'rejected' }, void_report: { state: 'not_needed', reached_tax_service: false } });
      const listed = json(await t.api.get(t.api.a.keys.owner, '/api/v1/invoices')).items.find((i: { number: string }) => i.number === number);
      expect(listed).toMatchObject({ upload: { state: 'rejected' } }); // the list too, which reads no upload problem
      expect(await counters(number)).toMatchObject({ void_requests: 0 });
      expect(await status()).toMatchObject({ voids: { pending: 0, refused: 0 } });
    });
  });
}
