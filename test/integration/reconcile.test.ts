// 对账 (R31): our invoices of one issue date against what the real sandbox tax service accepted.
// Every kind of difference is found and recorded with the report, an alert is raised, and each
// difference is resolved by a person — uploaded again (a new upload job) or marked investigated.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMerchant } from '../../src/app/merchants.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { createApiKey } from '../../src/app/api-keys.js';
import { reconcile, reconcileYesterday, resolveDifference } from '../../src/app/reconcile.js';
import { uploadRecord } from '../../src/app/upload-record.js';
import type { Store } from '../../src/app/ports.js';
import type { Caller } from '../../src/domain/access.js';
import type { Invoice } from '../../src/domain/invoice.js';
import { backlogPeriod } from '../../src/domain/contingency.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import { buildApp } from '../../src/http/app.js';
import { argon2Hasher } from '../../src/security/passwords.js';
import { createTaxServiceClient, type TaxServiceClient } from '../../src/upstream/client.js';
import { storedCredentials } from '../../src/upstream/credentials.js';
import { startSandbox, type StandaloneSandbox } from '../../src/upstream/simulator/server.js';
import { encodeUploadRecord } from '../../src/upstream/protocol.js';
import { movableClock, sampleInvoice, validUscc, type MovableClock } from '../support/http.js';
import { grantTestNumbers } from '../support/numbers.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';

let seed = 52_000_000 + Math.floor(Math.random() * 1_000_000) * 2;
const DATE = '2026-03-10'; // movableClock starts on it, 10:00 in Shanghai

for (const s of storesUnderTest) {
  describe(`reconciliation on ${s.name}`, () => {
    let opened: OpenedStore;
    let store: Store;
    let clock: MovableClock;
    let sandboxDir: string;
    let sandbox: StandaloneSandbox;
    let taxService: TaxServiceClient;
    const ports = () => ({ store, clock, taxService });

    async function merchantWithInvoices(count: number) {
      const merchant = await addMerchant({ store, clock }, { name: '对账测试有限公司', taxId: validUscc((seed += 2)), regionCode: '31' });
      await grantTestNumbers({ store, clock }, merchant.id);
      const clerk: Caller = { merchantId: merchant.id, role: 'clerk', actor: 'pos' };
      const owner: Caller = { merchantId: merchant.id, role: 'owner', actor: 'boss' };
      const invoices: Invoice[] = [];
      for (let i = 0; i < count; i++) invoices.push((await issueInvoice({ store, clock }, clerk, sampleInvoice({ remarks: `#${i}` }) as never)).invoice);
      return { merchant, owner, invoices };
    }
    /** What the upload worker does when the tax service accepts: upload, then mark uploaded. */
    async function upload(merchantTaxId: string, merchantId: string, invoice: Invoice, markLocally = true) {
      const [outcome] = (await taxService.upload(merchantTaxId, [encodeUploadRecord(uploadRecord(invoice))])).outcomes;
      expect(['accepted', 'duplicate']).toContain(outcome!.result);
      if (markLocally) await markUploaded(merchantId, invoice);
    }
    const markUploaded = (merchantId: string, invoice: Invoice) =>
      store.write((tx) => tx.invoices.setStatus(merchantId, invoice.number, { status: 'uploaded', at: shanghaiTimestamp(clock.now()), reason: null }));
    /** Another version of one of our numbers, as if someone else had uploaded it. */
    async function foreignVersion(merchantTaxId: string, number: string, issuedAt: string) {
      const content = `someone else's invoice ${number}`;
      const [outcome] = (await taxService.upload(merchantTaxId, [encodeUploadRecord({ number, kind: 'normal', issuedAt, buyerTaxId: '', totalAmountFen: '1', totalTaxFen: '0', digest: createHash('sha256').update(content).digest('hex'), content })])).outcomes;
      expect(outcome!.result).toBe('accepted');
    }

    beforeAll(async () => {
      opened = await s.open();
      store = opened.store;
      clock = movableClock();
      sandboxDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
      sandbox = await startSandbox({ dataDir: sandboxDir });
      taxService = createTaxServiceClient({ baseUrl: sandbox.url, credentials: storedCredentials(store, sandbox.url, clock), timeoutMs: 2000 });
    });
    afterAll(async () => {
      await sandbox.close();
      await opened.cleanup();
      rmSync(sandboxDir, { recursive: true, force: true });
    });

    it('finds invoices missing upstream, missing here and with another digest; pending uploads are not differences', async () => {
      const { merchant, owner, invoices } = await merchantWithInvoices(4);
      const [good, lost, clash, waiting] = invoices as [Invoice, Invoice, Invoice, Invoice];
      await upload(merchant.taxId, merchant.id, good);
      await markUploaded(merchant.id, lost); // we believe it went up; the tax service has no trace
      await foreignVersion(merchant.taxId, clash.number, clash.issuedAt);
      await markUploaded(merchant.id, clash);
      const stranger = `${clash.number.slice(0, 5)}999${clash.number.slice(8)}`;
      await foreignVersion(merchant.taxId, stranger, `${DATE}T09:00:00.000+08:00`);
      void waiting; // issued, still queued for upload

      const { report, items } = await reconcile(ports(), owner, DATE);
      expect(report).toMatchObject({ date: DATE, localCount: 4, upstreamCount: 3, matched: 1, pending: 1, differences: 3, actor: 'boss' });
      expect(items.map((i) => [i.number, i.difference])).toEqual(
        [[lost.number, 'missing_upstream'], [clash.number, 'digest_mismatch'], [stranger, 'missing_locally']].sort((a, b) => a[0]!.localeCompare(b[0]!)),
      );
      const mismatch = items.find((i) => i.difference === 'digest_mismatch')!;
      expect(mismatch.localDigest).toBe(clash.digest);
      expect(mismatch.upstreamDigest).not.toBe(clash.digest);
      expect(items.find((i) => i.difference === 'missing_upstream')).toMatchObject({ localStatus: 'uploaded', upstreamDigest: null, resolution: null });

      const [alert] = await store.read.alerts.list(merchant.id, { kind: 'reconciliation.mismatch' }, 10);
      expect(alert).toMatchObject({ severity: 'critical', subject: DATE, detail: { reconciliation: report.id, missing_upstream: 1, missing_locally: 1, digest_mismatch: 1 } });
      const audit = await store.read.audit.page(merchant.id, 0, 1000);
      expect(audit.at(-1)).toMatchObject({ action: 'reconciliation.run', subject: report.id, actor: 'boss' });
    });

    it('a clean day raises no alert; a date in the future or malformed is refused (1050) and nothing is recorded', async () => {
      const { merchant, owner, invoices } = await merchantWithInvoices(2);
      for (const invoice of invoices) await upload(merchant.taxId, merchant.id, invoice);
      const { report, items } = await reconcile(ports(), owner, DATE);
      expect(report).toMatchObject({ matched: 2, pending: 0, differences: 0 });
      expect(items).toEqual([]);
      expect(await store.read.alerts.list(merchant.id, {}, 10)).toEqual([]);
      for (const bad of ['2026-03-11', '2026-02-30', '10/03/2026', '']) {
        await expect(reconcile(ports(), owner, bad)).rejects.toMatchObject({ code: 1050 });
      }
      expect(await store.read.reconciliations.list(merchant.id, {}, 10)).toHaveLength(1);
      await expect(reconcile(ports(), { ...owner, role: 'clerk' }, DATE)).rejects.toMatchObject({ code: 2006 });
    });

    it('resolves differences: re-upload queues a new upload job, investigated needs a note, each only once', async () => {
      const { merchant, owner, invoices } = await merchantWithInvoices(2);
      const [lost, clash] = invoices as [Invoice, Invoice];
      await markUploaded(merchant.id, lost);
      await foreignVersion(merchant.taxId, clash.number, clash.issuedAt);
      await markUploaded(merchant.id, clash);
      const { items } = await reconcile(ports(), owner, DATE);
      const missing = items.find((i) => i.difference === 'missing_upstream')!;
      const mismatch = items.find((i) => i.difference === 'digest_mismatch')!;

      await expect(resolveDifference(ports(), owner, mismatch.id, { action: 'reupload' })).rejects.toMatchObject({ code: 1052 });
      await expect(resolveDifference(ports(), owner, mismatch.id, { action: 'investigated', note: '  ' })).rejects.toMatchObject({ code: 1052 });
      const investigated = await resolveDifference(ports(), owner, mismatch.id, { action: 'investigated', note: '税局记录为错误导入，已提交工单' });
      expect(investigated).toMatchObject({ resolution: 'investigated', resolvedBy: 'boss', note: '税局记录为错误导入，已提交工单' });
      await expect(resolveDifference(ports(), owner, mismatch.id, { action: 'investigated', note: 'again' })).rejects.toMatchObject({ code: 4011 });

      // Counts the upload jobs of a number by claiming them with a lease that ends at once.
      const jobsFor = async (number: string) => {
        clock.advance(1);
        const now = shanghaiTimestamp(clock.now());
        const claimed = await store.write((tx) => tx.outbox.claim({ topic: 'invoice.upload', owner: `t-${Math.random()}`, now, leaseUntil: now, limit: 10_000 }));
        return claimed.filter((j) => j.merchantId === merchant.id && j.subject === number).length;
      };
      const before = await jobsFor(lost.number);
      const backlogBefore = await store.read.usage.get(merchant.id, backlogPeriod(lost.kind));
      expect(await resolveDifference(ports(), owner, missing.id, { action: 'reupload' })).toMatchObject({ resolution: 'reuploaded' });
      expect(await jobsFor(lost.number)).toBe(before + 1);
      // The upload backlog counts it again, so the worker's count-down on completion stays balanced.
      expect(await store.read.usage.get(merchant.id, backlogPeriod(lost.kind))).toMatchObject({ invoiceCount: backlogBefore.invoiceCount + 1, preTaxFen: backlogBefore.preTaxFen + lost.totalAmount });
      await expect(resolveDifference(ports(), owner, missing.id, { action: 'reupload' })).rejects.toMatchObject({ code: 4011 });
      expect(await jobsFor(lost.number)).toBe(before + 1);

      // Once the upload went through, the next reconciliation no longer lists it.
      await upload(merchant.taxId, merchant.id, lost);
      const again = await reconcile(ports(), owner, DATE);
      expect(again.items.map((i) => i.difference)).toEqual(['digest_mismatch']);
    });

    it('counts a re-uploaded invoice in the offline backlog from its re-upload, not from its issue, however the backlog\'s oldest is read', async () => {
      const { merchant, owner, invoices: [lost] } = await merchantWithInvoices(1);
      await store.write(async (tx) => { // its first upload went through, as far as we knew: the worker's bookkeeping
        const now = shanghaiTimestamp(clock.now());
        for (const job of await tx.outbox.claim({ topic: 'invoice.upload', owner: 'first-upload', now, leaseUntil: now, limit: 10_000 })) await tx.outbox.complete(job.id, 'first-upload', now);
        await tx.uploads.reduceBacklog(merchant.id, lost!.kind, { count: 1, preTaxFen: lost!.totalAmount }, null);
      });
      await markUploaded(merchant.id, lost!);
      const { items } = await reconcile(ports(), owner, DATE);
      const day = clock.now();
      clock.advance(3 * 86_400_000); // looked into three days later
      try {
        await resolveDifference(ports(), owner, items.find((i) => i.difference === 'missing_upstream')!.id, { action: 'reupload' });
        const reuploadedAt = shanghaiTimestamp(clock.now());
        expect((await store.read.usage.get(merchant.id, backlogPeriod(lost!.kind))).since).toBe(reuploadedAt);
        // Every settled upload reads the oldest pending again: the same time, not the issue three days back.
        expect(await store.read.uploads.oldestPending(merchant.id, lost!.kind)).toBe(reuploadedAt);
      } finally {
        clock.set(day); // the other tests reconcile DATE
      }
    });

    it('counts as pending only what is still in the upload queue: an invoice voided and then rejected, or quarantined, is not', async () => {
      const { merchant, owner, invoices } = await merchantWithInvoices(3);
      const [voidedThenRejected, quarantined] = invoices as [Invoice, Invoice, Invoice];
      const at = shanghaiTimestamp(clock.now());
      await store.write(async (tx) => { // as the worker records the tax service's answers
        await tx.invoices.setStatus(merchant.id, voidedThenRejected.number, { status: 'voided', at, reason: '开错了' });
        await tx.uploads.recordProblem({ merchantId: merchant.id, number: voidedThenRejected.number, state: 'rejected', reasonCode: 'SANDBOX_RULE', reason: 'rule', localDigest: voidedThenRejected.digest, heldDigest: null, upstreamRecord: null, at });
        await tx.uploads.recordProblem({ merchantId: merchant.id, number: quarantined.number, state: 'quarantined', reasonCode: null, reason: 'digest conflict', localDigest: quarantined.digest, heldDigest: 'f'.repeat(64), upstreamRecord: null, at });
      });
      const { report, items } = await reconcile(ports(), owner, DATE);
      expect({ pending: report.pending, differences: items.length }).toEqual({ pending: 1, differences: 0 });
    });

    it('keeps merchants apart: another merchant can neither read nor resolve a report', async () => {
      const a = await merchantWithInvoices(1);
      const b = await merchantWithInvoices(0);
      await markUploaded(a.merchant.id, a.invoices[0]!);
      const { report, items } = await reconcile(ports(), a.owner, DATE);
      await expect(resolveDifference(ports(), b.owner, items[0]!.id, { action: 'investigated', note: 'x' })).rejects.toMatchObject({ code: 4010 });
      expect(await store.read.reconciliations.get(b.merchant.id, report.id)).toBeUndefined();
      expect((await store.read.reconciliations.get(a.merchant.id, report.id))?.id).toBe(report.id);
    });

    it('the daily job reconciles yesterday once across instances, and again only the next day', async () => {
      const log = { info: () => {}, warn: () => {} };
      clock.set('2026-03-11T01:00:00Z'); // 09:00 on the 11th in Shanghai
      const runs = await Promise.all([reconcileYesterday(ports(), 'instance-a', log), reconcileYesterday(ports(), 'instance-b', log)]);
      expect(runs.sort()).toEqual(['busy', 'done'].sort() as typeof runs);
      expect(await reconcileYesterday(ports(), 'instance-b', log)).toBe('not-due');
      const merchants = await store.read.merchants.list();
      for (const m of merchants) expect((await store.read.reconciliations.list(m.id, { date: DATE }, 50)).some((r) => r.actor === 'system:daily-reconciliation')).toBe(true);
      clock.set('2026-03-12T01:00:00Z');
      expect(await reconcileYesterday(ports(), 'instance-b', log)).toBe('done');
      clock.set('2026-03-10T02:00:00Z');
    });

    it('over HTTP: run, list, read and resolve, with the one error shape', async () => {
      const { merchant, invoices } = await merchantWithInvoices(1);
      await markUploaded(merchant.id, invoices[0]!);
      const app = await buildApp({ store, clock, passwords: argon2Hasher({ memoryCost: 1024, timeCost: 1 }) } as never, { logger: false, taxService });
      try {
        const key = (role: 'owner' | 'clerk') => createApiKey({ store, clock }, { merchantId: merchant.id, role, label: role }).then((k) => `Bearer ${k.key}`);
        const owner = await key('owner');
        const call = (method: 'GET' | 'POST', url: string, body?: object, authorization = owner) =>
          app.inject({ method, url, headers: { authorization, ...(body && { 'content-type': 'application/json' }) }, ...(body && { payload: JSON.stringify(body) }) });

        const refused = await call('POST', '/api/v1/reconciliations', { date: '2026-13-01' });
        expect(refused.statusCode).toBe(422);
        expect(refused.json().error).toMatchObject({ code: 1050, details: [{ field: 'date' }] });
        expect((await call('POST', '/api/v1/reconciliations', { date: DATE }, await key('clerk'))).statusCode).toBe(403);

        const run = await call('POST', '/api/v1/reconciliations', { date: DATE });
        expect(run.statusCode).toBe(201);
        const { report, items } = run.json();
        expect(report).toMatchObject({ date: DATE, local_count: 1, upstream_count: 0, differences: 1 });
        expect(items[0]).toMatchObject({ number: invoices[0]!.number, difference: 'missing_upstream', resolution: null });
        expect((await call('GET', `/api/v1/reconciliations?date=${DATE}`)).json().items.map((r: any) => r.id)).toContain(report.id);
        expect((await call('GET', `/api/v1/reconciliations/${report.id}`)).json().items).toHaveLength(1);
        expect((await call('GET', '/api/v1/reconciliations/rec_nope')).json().error.code).toBe(4010);
        const resolved = await call('POST', `/api/v1/reconciliations/items/${items[0].id}/resolve`, { action: 'reupload' });
        expect(resolved.statusCode).toBe(200);
        expect(resolved.json()).toMatchObject({ resolution: 'reuploaded' });
        expect((await call('POST', `/api/v1/reconciliations/items/${items[0].id}/resolve`, { action: 'reupload' })).statusCode).toBe(409);
        const alerts = (await call('GET', '/api/v1/alerts?kind=reconciliation.mismatch')).json().items;
        expect(alerts[0]).toMatchObject({ subject: DATE, detail: { reconciliation: report.id } });
      } finally {
        await app.close();
      }
    });
  });
}
