// The upload worker against a real sandbox tax service, on every store: every invoice arrives
// exactly once (the sandbox's per-number counters: one acceptance, no duplicate submission), a lost
// answer is resolved by a status query and never by a resend, a conflict quarantines, a rejection
// is shown on the invoice with what to do, flow control is obeyed, two workers share the work, and
// the contingency limits hold exactly at their boundaries while the tax service is down.
import { describe, expect, it } from 'vitest';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createOutboxRunner } from '../../src/app/outbox-runner.js';
import { purgeExpired } from '../../src/app/housekeeping.js';
import { startUploadWorker, uploadHandler, UPLOAD_TOPIC } from '../../src/app/upload-worker.js';
import { createUpkeep, refreshTerms } from '../../src/app/upstream-upkeep.js';
import { warnNearLimits } from '../../src/app/contingency.js';
import { startUploads } from '../../src/app/uploads.js';
import { readConfig } from '../../src/config.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import type { Ports } from '../../src/app/ports.js';
import { systemClock } from '../../src/domain/time.js';
import { body as json, oneLine, sampleInvoice } from '../support/http.js';
import { storesUnderTest } from '../support/stores.js';
import { upstreamFixture } from '../support/upstream-fixture.js';
import { encodeUploadRecord } from '../../src/upstream/protocol.js';
import { createTaxServiceClient, UpstreamFault } from '../../src/upstream/client.js';
import { staticCredentials, storedCredentials } from '../../src/upstream/credentials.js';
import type { Store } from '../../src/app/ports.js';

for (const kind of storesUnderTest) {
  describe(`uploads to the tax service on ${kind.name}`, () => {
    const t = upstreamFixture(kind);
    const { ports, seller } = t;
    const runner = (owner: string, client = t.taxService) =>
      t.keep(createOutboxRunner(ports(), uploadHandler(ports(), client, { backoffMs: 1, maxBackoffMs: 5 }), { owner, batchSize: 1000, leaseMs: 30_000, backoffMs: 1, maxBackoffMs: 5 }));
    /** Runs one worker round after another until nothing is due (or the rounds run out). */
    const drain = (r = runner('w1'), rounds = 20) => t.drain(r, rounds);
    const issue = async (n: number, body = sampleInvoice()) => {
      const numbers: string[] = [];
      for (let i = 0; i < n; i++) {
        const response = await t.api.issue(t.api.a.keys.clerk, body);
        expect(response.statusCode, response.body).toBe(201);
        numbers.push(json(response).number);
      }
      return numbers;
    };
    const status = async () => json(await t.api.get(t.api.a.keys.owner, '/api/v1/status'));
    /** Every number accepted exactly once, never sent again after it was accepted, digests equal. */
    const expectUploadedOnce = async (numbers: string[]) => {
      const counters = await t.sandbox.counters(seller());
      for (const number of numbers) {
        const c = counters.get(number);
        expect(c, `${number} never reached the tax service`).toBeDefined();
        expect({ number, accepted: c!.accepted, duplicates: c!.duplicates, conflicts: c!.conflicts }).toEqual({ number, accepted: 1, duplicates: 0, conflicts: 0 });
        const invoice = json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`));
        expect(invoice.status).toBe('uploaded');
        expect(invoice.upload).toMatchObject({ state: 'uploaded', code: null });
        expect(c!.digest).toBe(invoice.digest);
      }
    };

    it('uploads every issued invoice once, marks it uploaded in the audited chain and empties the backlog', async () => {
      const numbers = await issue(5);
      expect((await status()).backlog).toMatchObject({ count: 5, pre_tax_total: '7240.00' });
      await drain();
      await expectUploadedOnce(numbers);
      expect(await status()).toMatchObject({ mode: 'online', backlog: { count: 0, pre_tax_total: '0.00', oldest_issued_at: null } });
      const [report] = await verifyChains(ports(), [t.api.a.id]);
      expect(report!.breaks).toEqual([]);
    });

    it('keeps a job\'s record until the job completes, and housekeeping drops it after', async () => {
      const numbers = await issue(3);
      const stored = await t.opened.store.read.uploads.records(t.api.a.id, [1, 2, 3, 4, 5, 6]);
      expect(stored.map((r) => JSON.parse(Buffer.from(r.wire).toString()).number).sort()).toEqual([...numbers].sort());
      await drain();
      await expectUploadedOnce(numbers);
      expect((await purgeExpired(ports())).uploadRecords).toBe(3);
      expect(await t.opened.store.read.uploads.records(t.api.a.id, stored.map((r) => r.jobId))).toEqual([]);
    });

    it('uploads jobs enqueued without a stored record (by an earlier version) from the stored invoices, the same records', async () => {
      const numbers = await issue(3);
      await t.opened.exec(`delete from upload_records`);
      await drain();
      await expectUploadedOnce(numbers);
      expect((await status()).backlog).toMatchObject({ count: 0 });
    });

    it('resolves a lost answer by a status query, sends nothing again while that query fails, and counts the invoices uploaded once', async () => {
      const numbers = await issue(3);
      await t.taxService.terms(seller()); // enrolled: the upload is what loses its answer
      await t.sandbox.fault('lose_response');
      const w = runner('w1');
      await w.runOnce().catch(() => undefined); // the upload is committed upstream, its answer lost
      /** How many times the tax service received each invoice, and each one's status here. */
      const sent = async () => {
        const counters = await t.sandbox.counters(seller());
        return numbers.map((n) => counters.get(n)?.submissions ?? 0);
      };
      const statuses = async () => Promise.all(numbers.map(async (n) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${n}`)).status));
      expect(await sent()).toEqual([1, 1, 1]);
      expect(await statuses()).toEqual(['issued', 'issued', 'issued']);
      for (const fault of ['lose_response', 'error'] as const) {
        await t.sandbox.clear();
        await t.sandbox.fault(fault); // now the status query's answer is lost, or it fails
        t.api.clock.advance(60_000);
        await w.runOnce().catch(() => undefined);
        expect(await sent()).toEqual([1, 1, 1]);
        expect(await statuses()).toEqual(['issued', 'issued', 'issued']);
      }
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(w);
      await expectUploadedOnce(numbers);
      expect(await sent()).toEqual([1, 1, 1]);
    });

    it('settles lost answers in the round that probes the circuit, with one status query for all of them', async () => {
      const numbers = await issue(4);
      const client = t.sandbox.client(t.opened.store, t.api.clock, { failureThreshold: 1, openMs: 1_000, maxAttempts: 1 });
      const queries: number[] = [];
      const w = runner('w1', { ...client, status: () => Promise.reject(new Error('one query per job')), statuses: (seller, asked) => (queries.push(asked.length), client.statuses(seller, asked)) });
      await client.terms(seller()); // enrolled: the upload is what loses its answer
      await t.sandbox.fault('lose_response');
      await w.runOnce().catch(() => undefined); // committed upstream, the answer lost: four uncertain jobs
      expect(client.circuit().state).toBe('open');
      await t.sandbox.clear();
      t.api.clock.advance(60_000); // the jobs are due again
      await until(async () => client.circuit().state === 'half_open');
      await w.runOnce(); // one round: its status query is the probe, and settles all four
      expect(queries).toEqual([4]);
      for (const number of numbers) expect(json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`)).status).toBe('uploaded');
      await expectUploadedOnce(numbers);
    });

    it('retries records the tax service left unprocessed, and takes a doubled acknowledgement as one', async () => {
      const numbers = await issue(10);
      await t.sandbox.fault('partial', { rate: 0.5 });
      await t.sandbox.fault('double_ack');
      await drain(runner('w1'), 3);
      await t.sandbox.clear();
      await drain();
      await expectUploadedOnce(numbers);
      expect([...(await t.sandbox.counters(seller())).values()].reduce((n, c) => n + c.failed, 0)).toBeGreaterThan(0);
    });

    it('waits as long as the tax service asks between submissions (flow control)', async () => {
      await t.sandbox.fault('flow_control', { wait_seconds: 1 });
      const w = runner('w1');
      w.start();
      const first = await issue(1);
      await until(async () => (await t.sandbox.counters(seller())).get(first[0]!)?.accepted === 1);
      const second = await issue(1);
      const started = Date.now();
      w.wake();
      await until(async () => (await t.sandbox.counters(seller())).get(second[0]!)?.accepted === 1);
      await w.stop();
      // Never refused for coming too early, and it did wait.
      expect([...(await t.sandbox.counters(seller())).values()].every((c) => c.submissions === 1)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      await expectUploadedOnce([...first, ...second]);
    });

    it('keeps every lane within the wait: once the tax service has asked for one, no lane submits before it is over, and a wait is no outage', async () => {
      await t.sandbox.fault('flow_control', { wait_seconds: 1 });
      let refusedUpstream = 0; // by the tax service itself (its own code), not by the client before sending
      const client = t.taxService;
      const counting = { ...client, upload: (...args: Parameters<typeof client.upload>) => client.upload(...args).catch((error) => {
        if (error instanceof UpstreamFault && error.upstreamCode === 'FLOW_CONTROL') refusedUpstream += 1;
        throw error;
      }) };
      const numbers = await issue(12); // four submissions of three, on three lanes
      const started = Date.now();
      // On the real clock: the given-back jobs fall due as the wait passes (the fixture's clock stands still).
      t.keep(startUploadWorker({ store: t.opened.store, clock: systemClock }, counting, { owner: 'w', lanes: 3, batchSize: 3, idleMs: 50, leaseMs: 30_000, backoffMs: 1, maxBackoffMs: 5 })).start();
      await until(async () => (await status()).backlog.count === 0, 15_000);
      // Only the lanes' first submissions, sent together before any wait was asked for, can come too early.
      expect(refusedUpstream).toBeLessThanOrEqual(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_000); // the tax service's waits between the four
      expect(Date.now() - started).toBeLessThan(10_000); // given back for the wait, not for a backoff grown on it
      await expectUploadedOnce(numbers);
      expect(await status()).toMatchObject({ mode: 'online' });
      const alerts = json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items;
      expect(alerts.map((a: { kind: string }) => a.kind)).not.toContain('contingency.started');
    });

    it('goes on uploading other sellers\' invoices while one seller waits out a long flow-control wait', async () => {
      await t.sandbox.fault('flow_control', { wait_seconds: 60 });
      const [a1] = await issue(1);
      t.keep(startUploadWorker({ store: t.opened.store, clock: systemClock }, t.taxService, { owner: 'w', lanes: 1, batchSize: 10, idleMs: 50, leaseMs: 30_000, backoffMs: 1, maxBackoffMs: 5 })).start();
      await until(async () => (await t.sandbox.counters(seller())).get(a1!)?.accepted === 1);
      const b1 = json(await t.api.issue(t.api.b.keys.clerk, sampleInvoice())).number as string;
      const [a2] = await issue(1);
      // The one lane was answered with A's minute; B's invoice goes within seconds all the same.
      await until(async () => (await t.sandbox.counters(t.api.b.record.taxId)).get(b1)?.accepted === 1, 5_000);
      expect((await t.sandbox.counters(seller())).get(a2!)).toBeUndefined(); // A's next one waits for its minute
    });

    it('takes a refusal for coming before the wait as no outage: the merchant stays online, the jobs wait it out and arrive once', async () => {
      await t.sandbox.fault('flow_control', { wait_seconds: 60 });
      const [first] = await issue(1);
      await drain(); // another instance's submission, say: the tax service now asks for a minute's wait
      const [second] = await issue(1);
      const elsewhere = t.sandbox.client(t.opened.store, t.api.clock); // a client that was not told of the wait
      const refusal = await runner('w2', elsewhere).runOnce().then(() => undefined, (error: unknown) => error);
      expect(refusal).toBeUndefined(); // a pause, not a failure
      expect((await t.sandbox.counters(seller())).get(second!)).toBeUndefined(); // refused whole: nothing processed
      expect(await status()).toMatchObject({ mode: 'online' });
      const alerts = json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items;
      expect(alerts.map((a: { kind: string }) => a.kind)).not.toContain('contingency.started');
      await t.sandbox.clear(); // the tax service asks for no more waits
      await drain(runner('w3', t.sandbox.client(t.opened.store, t.api.clock)));
      expect((await t.sandbox.counters(seller())).get(second!)).toBeUndefined(); // its jobs are due after the wait only
      t.api.clock.advance(60_000);
      await drain(runner('w3', t.sandbox.client(t.opened.store, t.api.clock)));
      await expectUploadedOnce([first!, second!]);
    });

    it('takes a refusal (a signature the tax service will not take) as no outage, in the workers and the upkeep alike; the status says what stops the uploads until one goes through', async () => {
      const [number] = await issue(1);
      await t.taxService.terms(seller()); // enrolled: the key is stored
      const key = await storedCredentials(t.opened.store, t.sandbox.url, t.api.clock).get(seller());
      const refused = createTaxServiceClient({ baseUrl: t.sandbox.url, credentials: staticCredentials({ [seller()]: { ...key, secret: 'guessed' } }), timeoutMs: 1_000, maxAttempts: 1 });
      await runner('w1', refused).runOnce().catch(() => undefined);
      expect(await status()).toMatchObject({ mode: 'online', last_error: expect.stringMatching(/^4004 /) });
      const merchant = (await t.opened.store.read.merchants.get(t.api.a.id))!;
      await createUpkeep(ports(), refused, { termsMaxAgeMs: 0 }).merchant(merchant).catch(() => undefined); // its terms call is refused too
      expect(await status()).toMatchObject({ mode: 'online', last_error: expect.stringMatching(/^4004 /) });
      const alerts = json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items;
      expect(alerts.map((a: { kind: string }) => a.kind)).not.toContain('contingency.started');
      await t.sandbox.fault('down'); // an outage, met by the upkeep, is one
      await createUpkeep(ports(), t.taxService, { termsMaxAgeMs: 0 }).merchant(merchant).catch(() => undefined);
      expect(await status()).toMatchObject({ mode: 'contingency', last_error: expect.stringMatching(/^400[12] /) });
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain();
      await expectUploadedOnce([number!]);
      expect(await status()).toMatchObject({ mode: 'online', last_error: null });
    });

    it('warns once per contingency episode at 80 % of a limit, and not once the merchant is back online, whatever it read a moment before', async () => {
      await t.sandbox.setTerms(seller(), { monthly_credit_fen: null, contingency: [{ kind: 'normal', max_offline_hours: 72, max_offline_amount_fen: '300000' }] });
      const merchant = await refreshTerms(ports(), t.taxService, (await t.opened.store.read.merchants.get(t.api.a.id))!);
      await t.sandbox.fault('down');
      await issue(2); // ¥2,896 of ¥3,000
      await runner('w1').runOnce().catch(() => undefined);
      const store = t.opened.store;
      const readInContingency = { merchant: await store.read.merchants.get(merchant.id), backlog: await store.read.uploads.backlog(merchant.id) };
      const nearAlerts = async () => json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items.filter((a: { kind: string }) => a.kind === 'contingency.limit_near').length;
      await warnNearLimits(ports(), merchant);
      await warnNearLimits(ports(), merchant);
      expect(await nearAlerts()).toBe(1);
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(); // back online: a new episode may warn again, this one is over
      // Reads made just before the merchant went back online, the warning's write after it.
      const momentOld = {
        read: { merchants: { get: async () => readInContingency.merchant }, uploads: { backlog: async () => readInContingency.backlog } },
        write: store.write.bind(store),
      } as unknown as Store;
      await warnNearLimits({ store: momentOld, clock: t.api.clock }, merchant);
      expect(await nearAlerts()).toBe(1);
      expect(await status()).toMatchObject({ mode: 'online' });
    });

    it('changes the mode at the first failed round, but tells people of an outage only once it has lasted a minute, once, and of its end', async () => {
      const contingencyAlerts = async () => json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items
        .map((a: { kind: string }) => a.kind).filter((k: string) => k.startsWith('contingency.')).reverse();
      const w = runner('w1');
      const failedRound = async () => {
        await issue(1);
        await w.runOnce().catch(() => undefined);
      };
      const failedRoundWith = async (fault: string) => {
        await t.sandbox.fault(fault);
        await failedRound();
        await t.sandbox.clear();
      };
      // A blip: one failed round among successes.
      await t.sandbox.fault('error');
      await failedRound();
      expect(await status()).toMatchObject({ mode: 'contingency' }); // the offline limits bind at once
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(w);
      expect(await status()).toMatchObject({ mode: 'online' });
      expect(await contingencyAlerts()).toEqual([]);
      // An outage: still failing a minute on.
      await t.sandbox.fault('error');
      await failedRound();
      t.api.clock.advance(59_999);
      await failedRound();
      expect(await contingencyAlerts()).toEqual([]);
      t.api.clock.advance(1);
      await failedRound();
      await failedRound();
      expect(await contingencyAlerts()).toEqual(['contingency.started']);
      await t.sandbox.clear();
      t.api.clock.advance(60_000);
      await drain(w);
      expect(await contingencyAlerts()).toEqual(['contingency.started', 'contingency.ended']);
      // An outage that turns into refusals (the service back, but refusing the key) is told of as well.
      await failedRoundWith('error');
      t.api.clock.advance(60_000);
      await issue(1);
      const key = await storedCredentials(t.opened.store, t.sandbox.url, t.api.clock).get(seller());
      const refusing = createTaxServiceClient({ baseUrl: t.sandbox.url, credentials: staticCredentials({ [seller()]: { ...key, secret: 'guessed' } }), timeoutMs: 1_000, maxAttempts: 1 });
      await runner('w2', refusing).runOnce().catch(() => undefined);
      expect(await status()).toMatchObject({ mode: 'contingency', last_error: expect.stringMatching(/^4004 /) });
      expect(await contingencyAlerts()).toEqual(['contingency.started', 'contingency.ended', 'contingency.started']);
    });

    it('quarantines an invoice whose number the tax service holds with another digest: both kept, an alert raised', async () => {
      const [number] = await issue(1);
      const content = 'another invoice that took the same number';
      await t.taxService.upload(seller(), [encodeUploadRecord({ number: number!, kind: 'normal', issuedAt: '2026-03-10T10:00:00.000+08:00', buyerTaxId: '', totalAmountFen: '1', totalTaxFen: '0', digest: createHash('sha256').update(content).digest('hex'), content })]);
      await drain();
      const problem = await t.opened.store.read.uploads.problem(t.api.a.id, number!);
      const ours = json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`));
      expect(problem).toMatchObject({ state: 'quarantined', localDigest: ours.digest, heldDigest: createHash('sha256').update(content).digest('hex') });
      expect(ours.status).toBe('issued'); // nothing overwritten either side
      expect(ours.upload).toMatchObject({ state: 'quarantined', code: 4025, held_digest: problem!.heldDigest });
      expect((await t.sandbox.counters(seller())).get(number!)).toMatchObject({ accepted: 1, conflicts: 1 });
      const alerts = json(await t.api.get(t.api.a.keys.owner, '/api/v1/alerts')).items;
      expect(alerts.map((a: { kind: string; subject: string }) => [a.kind, a.subject])).toContainEqual(['upload.conflict', number]);
      expect(await status()).toMatchObject({ backlog: { count: 0 }, upload_problems: { quarantined: 1 } });
      expect((await verifyChains(ports(), [t.api.a.id]))[0]!.breaks).toEqual([]);
    });

    it('shows a rejection on the invoice with the tax service\'s reason', async () => {
      const [number] = await issue(1);
      await t.sandbox.fault('reject');
      await drain();
      const invoice = json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`));
      expect(invoice).toMatchObject({ status: 'rejected', void_reason: expect.stringContaining('sandbox rule') });
      // The merchant is told what happened and what to do, with a code to look up.
      expect(invoice.upload).toMatchObject({ state: 'rejected', code: 4024, reason: expect.stringContaining('SANDBOX_RULE'), remedy: expect.stringContaining('红字发票') });
      expect(json(await t.api.get(t.api.a.keys.owner, '/api/v1/errors/4024')).code).toBe(4024);
      expect(await t.opened.store.read.uploads.problem(t.api.a.id, number!)).toMatchObject({ state: 'rejected', reasonCode: 'SANDBOX_RULE' });
      expect(await status()).toMatchObject({ backlog: { count: 0 }, upload_problems: { rejected: 1 } });
      expect((await verifyChains(ports(), [t.api.a.id]))[0]!.breaks).toEqual([]);
    });

    it('shares the work between two workers without uploading anything twice', async () => {
      const numbers = await issue(40);
      const [a, b] = [runner('instance-a'), runner('instance-b')];
      await Promise.all([drain(a), drain(b)]);
      await expectUploadedOnce(numbers);
    });

    it('submits at most FAPIAO_UPLOAD_BATCH invoices at once when the server starts its uploads', async () => {
      const numbers = await issue(7);
      const submitted: number[] = [];
      const counting = new Proxy(t.taxService, {
        get(target, name) {
          const value = Reflect.get(target, name);
          if (name === 'upload') return (taxId: string, records: unknown[]) => (submitted.push(records.length), value.call(target, taxId, records));
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const quiet = { info: () => undefined, warn: () => undefined };
      const config = readConfig({ FAPIAO_UPLOAD_BATCH: '3', FAPIAO_UPLOAD_POLL_MS: '20' });
      const stop = startUploads(ports(), counting, config, quiet);
      try {
        await until(async () => submitted.reduce((sum, n) => sum + n, 0) >= 7);
      } finally {
        await stop();
      }
      expect(submitted.every((n) => n <= 3), JSON.stringify(submitted)).toBe(true);
      expect(submitted.length).toBeGreaterThanOrEqual(3);
      await expectUploadedOnce(numbers);
    });

    it('keeps issuing while the tax service is down, within the offline limits exactly, and uploads everything when it is back', async () => {
      // ¥3,000 pre-tax for ordinary invoices while offline; the sample invoice is ¥1,448 before tax.
      await t.sandbox.setTerms(seller(), { monthly_credit_fen: null, contingency: [{ kind: 'normal', max_offline_hours: 2, max_offline_amount_fen: '300000' }] });
      await refreshTerms(ports(), t.taxService, (await t.opened.store.read.merchants.get(t.api.a.id))!);
      await t.sandbox.fault('down');
      const w = runner('w1');
      const numbers = await issue(2); // ¥2,896
      await w.runOnce().catch(() => undefined);
      expect(await status()).toMatchObject({ mode: 'contingency', backlog: { count: 2, pre_tax_total: '2896.00' }, limits: [{ kind: 'normal', warning: true, blocked: false }] });
      // ¥104 fits exactly; one fen more does not.
      const over = await t.api.issue(t.api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '104.01', '0.06')] }));
      expect(over.statusCode).toBe(503);
      expect(json(over).error.code).toBe(4022);
      numbers.push(...(await issue(1, sampleInvoice({ lines: [oneLine('1', '104.00', '0.06')] }))));
      expect(json(await t.api.issue(t.api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '0.01', '0.06')] }))).error.code).toBe(4022);
      // Two hours after the oldest, issuing still goes on; a moment later it stops until the backlog is uploaded.
      const back = async () => t.api.issue(t.api.a.keys.clerk, sampleInvoice({ kind: 'special', lines: [oneLine('1', '1.00', '0.06')] }));
      t.api.clock.advance(2 * 3600_000 + 1);
      const stale = await t.api.issue(t.api.a.keys.clerk, sampleInvoice({ lines: [oneLine('1', '0.01', '0.06')] }));
      expect(json(stale).error.code).toBe(4021);
      expect((await status()).limits[0]).toMatchObject({ blocked: true, unlock: expect.stringContaining('restore the connection') });
      expect((await back()).statusCode).toBe(201); // special invoices have no limit here and go on
      await t.sandbox.clear();
      await drain(w);
      expect(await status()).toMatchObject({ mode: 'online', backlog: { count: 0 }, limits: [{ blocked: false }] });
      numbers.push(...(await issue(1))); // unlocked by itself
      await drain(w);
      await expectUploadedOnce(numbers);
    });

    for (const enrolled of [true, false]) {
      it(`notices the tax service is back within the circuit's probe interval, however long the outage was (${enrolled ? 'an enrolled merchant' : 'a merchant not yet enrolled'})`, async () => {
        // While the service is down the circuit spaces the attempts (a probe every 200 ms here); the
        // runners' own backoff (20 s) must not come on top of it, for either lane: the one that sends
        // the probe and the one that waits for its answer. A merchant whose key is still to be
        // fetched fails at enrolment, which must count against the circuit like any other attempt.
        const client = t.sandbox.client(t.opened.store, t.api.clock, { failureThreshold: 1, openMs: 200 });
        const live: Ports = { store: t.opened.store, clock: systemClock };
        const handler = uploadHandler(live, client, { backoffMs: 1, maxBackoffMs: 5 });
        if (enrolled) await client.terms(seller());
        await t.sandbox.fault('down');
        const numbers = await issue(2);
        for (const owner of ['lane1', 'lane2']) {
          const lane = createOutboxRunner(live, handler, { owner, batchSize: 1, leaseMs: 30_000, idleMs: 20, backoffMs: 20_000, maxBackoffMs: 60_000 });
          t.keep(lane);
          lane.start();
        }
        await until(async () => client.circuit().consecutiveFailures >= 5); // probed again and again
        await t.sandbox.clear();
        const healed = Date.now();
        const uploaded = async (n: string) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${n}`)).status === 'uploaded';
        await until(async () => (await Promise.all(numbers.map(uploaded))).every(Boolean));
        expect(Date.now() - healed).toBeLessThan(3_000);
        await expectUploadedOnce(numbers);
      });
    }

    it('looks for uploads with one lane while invoices trickle in, and wakes every lane for a backlog', async () => {
      // Each lane's claims and bookkeeping are write transactions issuing waits behind: lanes polling
      // side by side would only split a trickle into more of them.
      const lanesThatUploaded = async (numbers: string[]) => {
        const { db } = t.opened.connect();
        try {
          const rows = await db.selectFrom('outbox').select('lease_owner').where('topic', '=', UPLOAD_TOPIC).where('subject', 'in', numbers).execute();
          return [...new Set(rows.map((row: { lease_owner: string }) => row.lease_owner.split('/').at(-1)))].sort();
        } finally {
          await db.destroy();
        }
      };
      const uploaded = async (numbers: string[]) => (await Promise.all(numbers.map(async (n) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${n}`)).status))).every((s) => s === 'uploaded');
      // Counts the lanes' looks for due work (a read before any claim).
      const { store, clock } = ports();
      let looksAnswered = 0;
      const hasDue = store.read.outbox.hasDue;
      const counted: Ports = {
        clock,
        store: { ...store, read: { ...store.read, outbox: { ...store.read.outbox, hasDue: (...args) => hasDue(...args).finally(() => (looksAnswered += 1)) } } },
      };
      // The first lane polls every 300 ms, the others every 3 s: this test ends before they would look by themselves.
      const worker = t.keep(startUploadWorker(counted, t.taxService, { owner: 'w', lanes: 3, batchSize: 4, idleMs: 300, leaseMs: 30_000, backoffMs: 1, maxBackoffMs: 5 }));
      worker.start();
      await until(async () => looksAnswered >= 3); // every lane has looked once and found nothing

      const trickle: string[] = [];
      for (let round = 0; round < 3; round++) {
        const numbers = await issue(2); // less than a batch at a time
        trickle.push(...numbers);
        await until(() => uploaded(numbers));
      }
      expect(await lanesThatUploaded(trickle)).toEqual(['1']);

      const backlog = await issue(24); // six batches: the first lane claims a full one and wakes the others
      await until(() => uploaded(backlog));
      expect(await lanesThatUploaded(backlog)).toEqual(['1', '2', '3']);
      await expectUploadedOnce([...trickle, ...backlog]);
    });

    it('puts every lane back to work once the tax service is back: none sits out a backoff grown over the outage', async () => {
      // Three lanes of one worker wake together at each half-open moment, and another caller of the
      // same client (as the upkeep's calls are) competes for the probe. Whoever sends it, once it has
      // closed the circuit every lane uploads, well within a runner backoff (20 s here) of the
      // service's return. The races behind it (which lane claims at half-open, a batch the circuit
      // refused) are pinned down one by one in test/unit/upstream-jobs.test.ts.
      const client = t.sandbox.client(t.opened.store, t.api.clock, { failureThreshold: 1, openMs: 200 });
      const live: Ports = { store: t.opened.store, clock: systemClock };
      const laneOf = new AsyncLocalStorage<string>();
      const accepted = new Map<string, number>(); // by the lane that uploaded
      const counting = new Proxy(client, {
        get: (target, key, receiver) => (key !== 'upload' ? Reflect.get(target, key, receiver) : async (...args: Parameters<typeof client.upload>) => {
          const answer = await target.upload(...args);
          const lane = laneOf.getStore()!;
          accepted.set(lane, (accepted.get(lane) ?? 0) + answer.outcomes.filter((o) => o.result === 'accepted').length);
          return answer;
        }),
      });
      const handler = uploadHandler(live, counting, { backoffMs: 1, maxBackoffMs: 5 });
      await client.terms(seller());
      await t.sandbox.fault('down');
      const numbers = await issue(24);
      for (const owner of ['lane1', 'lane2', 'lane3']) {
        const lane = createOutboxRunner(live, { ...handler, handle: (jobs, lease) => laneOf.run(owner, () => handler.handle(jobs, lease)) },
          { owner, batchSize: 1, leaseMs: 30_000, idleMs: 20, backoffMs: 20_000, maxBackoffMs: 60_000 });
        t.keep(lane);
        lane.start();
      }
      await until(async () => client.circuit().consecutiveFailures >= 4); // several half-open moments
      await t.sandbox.clear();
      while (client.circuit().state !== 'closed') {
        await client.terms(seller()).catch(() => undefined); // the upkeep's probe
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const uploaded = async (n: string) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${n}`)).status === 'uploaded';
      await until(async () => (await Promise.all(numbers.map(uploaded))).every(Boolean), 5_000);
      expect([...accepted.keys()].sort()).toEqual(['lane1', 'lane2', 'lane3']);
      await expectUploadedOnce(numbers);
    });

    it('gives a batch the circuit refused back due at once: it reached nobody, so no backoff', async () => {
      const [number] = await issue(1);
      const client = await t.clientWithOpenCircuit();
      const handler = uploadHandler(ports(), client, { backoffMs: 60_000, maxBackoffMs: 60_000 });
      // Claims while the circuit is open (as a lane does that claimed just before it opened).
      const eager = createOutboxRunner(ports(), { ...handler, notBefore: undefined }, { owner: 'eager', batchSize: 10, leaseMs: 30_000 });
      expect(await eager.runOnce()).toBe(1); // refused: a short pause for the lane, not a failure
      await until(async () => client.circuit().state === 'half_open'); // the store's clock has not moved
      expect(await runner('w2').runOnce()).toBe(1); // due again at once, not a minute's backoff later
      expect(json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`)).status).toBe('uploaded');
    });

    it('looks again as soon as a lane\'s pause ends, not a poll interval later', async () => {
      const [number] = await issue(1);
      const waits = [50, 0];
      let claimedAt = 0;
      const handler = uploadHandler(ports(), t.taxService);
      const started = Date.now();
      const lane = createOutboxRunner(ports(), {
        ...handler,
        notBefore: () => waits.shift() ?? 0, // held back once, as while another lane's probe is out
        handle: (jobs, lease) => ((claimedAt ||= Date.now()), handler.handle(jobs, lease)),
      }, { owner: 'held', batchSize: 1000, leaseMs: 30_000, idleMs: 10_000 });
      t.keep(lane);
      lane.start();
      await until(async () => claimedAt > 0, 5_000);
      expect(claimedAt - started).toBeLessThan(2_000); // the pause (50 ms), not the poll interval (10 s)
      await until(async () => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`)).status === 'uploaded');
    });

    it('wakes a lane idle for want of work when asked (a backlog), but never cuts its backoff short', async () => {
      const handler = uploadHandler(ports(), t.taxService);
      let claims = 0;
      let failures = 0;
      const lane = t.keep(createOutboxRunner(ports(), { ...handler, handle: (jobs, lease) => ((claims += 1), handler.handle(jobs, lease)) }, {
        owner: 'idle', batchSize: 1000, leaseMs: 30_000, idleMs: 60_000, backoffMs: 60_000, maxBackoffMs: 60_000,
        log: { info: () => undefined, warn: () => void (failures += 1) },
      }));
      const status = async (number: string) => json(await t.api.get(t.api.a.keys.owner, `/api/v1/invoices/${number}`)).status;
      lane.start();
      const [first] = await issue(1);
      await until(async () => {
        lane.wakeIfIdle(); // again until it has been asleep for want of work (a minute) and wakes
        return (await status(first!)) === 'uploaded';
      }, 5_000);
      expect(claims).toBe(1);

      await t.sandbox.fault('down');
      const [second] = await issue(1);
      lane.wakeIfIdle();
      await until(async () => failures === 1, 5_000); // the submission failed: backing off, for 30–90 s
      await t.sandbox.clear();
      t.api.clock.advance(60_000); // the job it gave back is due again
      lane.wakeIfIdle();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(claims).toBe(2); // still backing off
      lane.wake(); // a caller that knows the service is back may cut it short
      await until(async () => (await status(second!)) === 'uploaded', 5_000);
      expect(claims).toBe(3);
    });

    it('holds a lane back while another lane\'s probe decides whether the tax service is back', async () => {
      const client = t.sandbox.client(t.opened.store, t.api.clock, { failureThreshold: 1, openMs: 50, maxAttempts: 1 });
      const handler = uploadHandler(ports(), client);
      await client.terms(seller()); // enrolled while the service was up
      await t.sandbox.fault('error');
      await expect(client.terms(seller())).rejects.toThrow();
      expect(handler.notBefore!(true)).toBeGreaterThan(0); // open: nobody claims
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(handler.notBefore!(true)).toBe(0); // half-open: the first lane sends the probe
      await t.sandbox.clear();
      await t.sandbox.fault('slow', { delay_ms: 300 });
      const probe = client.terms(seller());
      await until(async () => client.circuit().probeInFlight);
      expect(handler.notBefore!(true)).toBeGreaterThan(0); // the other lane waits for its answer instead of failing
      await probe;
      expect(client.circuit().state).toBe('closed');
      expect(handler.notBefore!(true)).toBe(0);
    });

    it('does not hold uploads in flight against the offline limits while the tax service is reachable', async () => {
      await t.sandbox.setTerms(seller(), { monthly_credit_fen: null, contingency: [{ kind: 'normal', max_offline_hours: 2, max_offline_amount_fen: '100000' }] });
      await refreshTerms(ports(), t.taxService, (await t.opened.store.read.merchants.get(t.api.a.id))!);
      const numbers = await issue(3); // ¥4,344 waiting for the next upload round, past the ¥1,000 offline limit
      expect(await status()).toMatchObject({ mode: 'online', backlog: { count: 3 }, limits: [{ blocked: false }] });
      await drain();
      await expectUploadedOnce(numbers);
    });

    it('never lets a worker that lost its lease finish a job', async () => {
      const [number] = await issue(1);
      const jobs = await t.opened.store.write((tx) => tx.outbox.claim({ topic: UPLOAD_TOPIC, owner: 'old', now: iso(t.api.clock.now()), leaseUntil: iso(new Date(t.api.clock.now().getTime() + 1)), limit: 10 }));
      t.api.clock.advance(10);
      await drain(runner('new'));
      expect(await t.opened.store.write((tx) => tx.uploads.completeJobs(jobs.map((j) => j.id), 'old', iso(t.api.clock.now())))).toEqual([]);
      await expectUploadedOnce([number!]);
    });
  });
}

const iso = (d: Date) => new Date(d.getTime() + 8 * 3600_000).toISOString().slice(0, 23) + '+08:00';

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

