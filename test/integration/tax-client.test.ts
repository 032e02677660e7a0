// The tax-service client against the real sandbox on a real port: the protocol, signatures, and
// every fault the sandbox can inject — with what the client reports, whether the request may have
// been processed, and what the sandbox actually holds and counts afterwards.
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTaxServiceClient, UpstreamFault, type TaxServiceClient, type TaxServiceClientOptions } from '../../src/upstream/client.js';
import { enroll, staticCredentials, storedCredentials } from '../../src/upstream/credentials.js';
import { encodeUploadRecord, type UploadRecord } from '../../src/upstream/protocol.js';
import { signRequest, type SigningKey } from '../../src/upstream/signing.js';
import { startSandbox, type StandaloneSandbox } from '../../src/upstream/simulator/server.js';
import { sandboxPlugin } from '../../src/upstream/simulator/plugin.js';
import Fastify from 'fastify';
import { systemClock } from '../../src/domain/time.js';
import { storesUnderTest } from '../support/stores.js';
import { validUscc } from '../support/http.js';

const SELLER = validUscc(31_415_926);
const OTHER = validUscc(27_182_818);
let sequence = 0;

/** A record whose digest is the SHA-256 of its content, as the protocol requires. */
function record(kind: 'normal' | 'special' = 'normal', content = `invoice #${++sequence} ${Math.random()}`): UploadRecord {
  const n = ++sequence;
  return {
    number: `2631100${String(n).padStart(13, '0')}`, kind, issuedAt: '2026-11-21T10:00:00.000+08:00', buyerTaxId: '', totalAmountFen: '10000', totalTaxFen: '600',
    digest: createHash('sha256').update(content).digest('hex'), content,
  };
}

/** Records as an upload carries them. */
const encoded = (...records: UploadRecord[]) => records.map(encodeUploadRecord);

describe('tax-service client against the sandbox', () => {
  let dataDir: string;
  let sandbox: StandaloneSandbox;
  let key: SigningKey;
  let otherKey: SigningKey;
  const clients = (options: Partial<TaxServiceClientOptions> = {}) =>
    createTaxServiceClient({
      baseUrl: sandbox.url, credentials: staticCredentials({ [SELLER]: key, [OTHER]: otherKey }),
      timeoutMs: 400, maxAttempts: 1, baseBackoffMs: 10, maxBackoffMs: 50, failureThreshold: 1000, ...options,
    });
  let client: TaxServiceClient;
  const admin = async (method: string, path: string, body?: object) => {
    const response = await fetch(`${sandbox.url}${path}`, { method, ...(body && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    return response.json() as Promise<any>;
  };
  const fault = (mode: string, settings: object = {}) => admin('PUT', `/admin/faults/${mode}`, settings);
  const counters = async (number: string) => (await admin('GET', `/admin/uploads?seller=${SELLER}&number=${number}`)).items[0];
  const failure = async (promise: Promise<unknown>): Promise<UpstreamFault> => {
    const error = await promise.then(() => undefined, (e: unknown) => e);
    expect(error, 'the call should have failed').toBeInstanceOf(UpstreamFault);
    return error as UpstreamFault;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
    sandbox = await startSandbox({ dataDir });
    key = await enroll(sandbox.url, SELLER);
    otherKey = await enroll(sandbox.url, OTHER);
    client = clients();
  });
  afterEach(() => admin('DELETE', '/admin/faults'));
  afterAll(async () => {
    await sandbox.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('the protocol', () => {
    it('grants blocks that never overlap, and the same block again for a retried request id', async () => {
      const a = await client.allocateBlock(SELLER, 2026, 100, 'req-a');
      const b = await client.allocateBlock(SELLER, 2026, 50);
      expect(await client.allocateBlock(SELLER, 2026, 100, 'req-a')).toEqual(a);
      expect(b.first).toBe(a.last + 1);
      expect(b.last - b.first + 1).toBe(50);
      expect((await client.allocateBlock(SELLER, 2027, 10)).first).toBe(1); // another year, another series
      expect((await failure(client.allocateBlock(SELLER, 2026, 7, 'req-a'))).upstreamCode).toBe('REQUEST_ID_REUSED');
    });

    it('accepts once, answers a same-digest resend as duplicate and a different digest as conflict, never overwriting', async () => {
      const first = record();
      expect((await client.upload(SELLER, encoded(first))).outcomes).toEqual([{ number: first.number, result: 'accepted' }]);
      expect((await client.upload(SELLER, encoded(first))).outcomes).toEqual([{ number: first.number, result: 'duplicate' }]);
      const changed = { ...record(), number: first.number };
      const [conflict] = (await client.upload(SELLER, encoded(changed))).outcomes;
      expect(conflict).toMatchObject({ number: first.number, result: 'conflict', heldDigest: first.digest });
      expect(await client.status(SELLER, first.number)).toEqual({ number: first.number, known: true, digest: first.digest, state: 'accepted' });
      expect(await counters(first.number)).toMatchObject({ submissions: 3, accepted: 1, duplicates: 1, conflicts: 1, digest: first.digest });
    });

    it('voids an accepted invoice once: a repeat answers already_voided; unknown invoices and other months are refused', async () => {
      const r = record();
      const voidedAt = '2026-11-21T15:00:00.000+08:00';
      expect(await client.voidInvoice(SELLER, r.number, { reason: '开错了', voidedAt })).toMatchObject({ number: r.number, result: 'refused', reasonCode: 'INVOICE_UNKNOWN' });
      await client.upload(SELLER, encoded(r));
      expect(await client.voidInvoice(SELLER, r.number, { reason: '开错了', voidedAt })).toEqual({ number: r.number, result: 'voided', voidedAt });
      expect(await client.voidInvoice(SELLER, r.number, { reason: 'again', voidedAt: '2026-11-21T16:00:00.000+08:00' })).toEqual({ number: r.number, result: 'already_voided', voidedAt });
      expect(await client.status(SELLER, r.number)).toEqual({ number: r.number, known: true, digest: r.digest, state: 'voided', voidedAt });
      expect(await counters(r.number)).toMatchObject({ accepted: 1, void_requests: 3, voids: 1, void_refusals: 1 });
      const late = record();
      await client.upload(SELLER, encoded(late));
      expect(await client.voidInvoice(SELLER, late.number, { reason: '开错了', voidedAt: '2026-12-01T09:00:00.000+08:00' })).toMatchObject({ result: 'refused', reasonCode: 'VOID_PERIOD_CLOSED' });
      expect(await client.status(SELLER, late.number)).toMatchObject({ state: 'accepted' });
    });

    it('rejects a record whose digest is not that of its content, and keeps nothing of it', async () => {
      const bad = { ...record(), digest: 'a'.repeat(64) };
      const [outcome] = (await client.upload(SELLER, encoded(bad))).outcomes;
      expect(outcome).toMatchObject({ result: 'rejected', reasonCode: 'INVALID_RECORD' });
      expect(await client.status(SELLER, bad.number)).toEqual({ number: bad.number, known: false });
    });

    it('lists the accepted invoices of an issue date page by page, and reads the terms', async () => {
      const records = Array.from({ length: 3 }, () => ({ ...record(), issuedAt: '2026-10-01T09:00:00.000+08:00' }));
      await client.upload(SELLER, encoded(...records));
      const listed = await client.acceptedOn(SELLER, '2026-10-01');
      expect(listed.invoices.map((i) => [i.number, i.digest])).toEqual(records.map((r) => [r.number, r.digest]));
      expect((await client.acceptedOn(OTHER, '2026-10-01')).invoices).toEqual([]);
      expect(await client.terms(SELLER)).toEqual({
        monthlyCreditFen: null,
        contingency: [{ kind: 'normal', maxOfflineHours: 72, maxOfflineAmountFen: '100000000' }, { kind: 'special', maxOfflineHours: 24, maxOfflineAmountFen: '50000000' }],
      });
      await admin('PUT', `/admin/terms/${OTHER}`, { monthly_credit_fen: '500000', contingency: [{ kind: 'normal', max_offline_hours: 12, max_offline_amount_fen: '100' }] });
      expect(await client.terms(OTHER)).toEqual({ monthlyCreditFen: '500000', contingency: [{ kind: 'normal', maxOfflineHours: 12, maxOfflineAmountFen: '100' }] });
    });

    it('answers the status of many invoices in one query, one answer per number in the order asked', async () => {
      const [accepted, voided, unknown, rejected] = [record(), record(), record(), record('special')];
      await client.upload(SELLER, encoded(accepted, voided));
      const voidedAt = '2026-11-21T15:00:00.000+08:00';
      await client.voidInvoice(SELLER, voided.number, { reason: '开错了', voidedAt });
      await fault('reject', { kind: 'special' });
      await client.upload(SELLER, encoded(rejected));
      const asked = [unknown, voided, accepted, rejected].map((r) => r.number);
      expect(await client.statuses(SELLER, asked)).toEqual([
        { number: unknown.number, known: false },
        { number: voided.number, known: true, digest: voided.digest, state: 'voided', voidedAt },
        { number: accepted.number, known: true, digest: accepted.digest, state: 'accepted' },
        { number: rejected.number, known: true, state: 'rejected', reason: expect.stringContaining('SANDBOX_RULE') },
      ]);
      for (const number of asked) expect(await client.statuses(SELLER, [number])).toEqual([await client.status(SELLER, number)]);
      expect(await client.statuses(OTHER, [accepted.number])).toEqual([{ number: accepted.number, known: false }]); // another seller's invoice
      expect(await client.statuses(SELLER, [])).toEqual([]);
    });

    it('refuses a status query for more than 1,000 numbers before sending; the sandbox refuses it, and a malformed one, too', async () => {
      const many = Array.from({ length: 1001 }, (_, i) => `26311000${String(i).padStart(12, '0')}`);
      await expect(client.statuses(SELLER, many)).rejects.toThrow(RangeError);
      const send = async (value: unknown) => {
        const body = JSON.stringify(value);
        const path = `/v1/sellers/${SELLER}/statuses`;
        const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(key, { method: 'POST', path, body }) }, body });
        return { status: response.status, code: (await response.json()).error?.code };
      };
      expect(await send({ numbers: many })).toEqual({ status: 413, code: 'BATCH_TOO_LARGE' });
      for (const bad of [{}, { numbers: [] }, { numbers: 'x' }, { numbers: [1] }, { numbers: [''] }]) expect(await send(bad)).toEqual({ status: 400, code: 'BAD_REQUEST' });
    });

    it('takes a status answer that leaves a number out for a protocol error (4005), never for "unknown"', async () => {
      const host = Fastify({ logger: false });
      host.post('/v1/sellers/:seller/statuses', async (request) => ({ invoices: [{ number: (request.body as { numbers: string[] }).numbers[0], known: false }] }));
      const url = await host.listen({ port: 0, host: '127.0.0.1' });
      try {
        const partial = createTaxServiceClient({ baseUrl: url, credentials: staticCredentials({ [SELLER]: key }), maxAttempts: 1 });
        expect(await partial.statuses(SELLER, ['26311000000000000001'])).toEqual([{ number: '26311000000000000001', known: false }]);
        expect(await failure(partial.statuses(SELLER, ['26311000000000000001', '26311000000000000002']))).toMatchObject({ code: 4005 });
      } finally {
        await host.close();
      }
    });

    it('refuses more than 1,000 records before sending, and the sandbox refuses them too', async () => {
      const many = Array.from({ length: 1001 }, () => record());
      await expect(client.upload(SELLER, encoded(...many))).rejects.toThrow(RangeError);
      const body = JSON.stringify({ records: many.map((r) => ({ number: r.number })) });
      const path = `/v1/sellers/${SELLER}/uploads`;
      const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(key, { method: 'POST', path, body }) }, body });
      expect(response.status).toBe(413);
      expect((await response.json()).error.code).toBe('BATCH_TOO_LARGE');
    });
  });

  describe('signatures', () => {
    const raw = (headers: Record<string, string>, path = `/v1/sellers/${SELLER}/terms`) => fetch(`${sandbox.url}${path}`, { headers }).then(async (r) => ({ status: r.status, body: await r.json() as any }));

    it('refuses a wrong secret, a key of another seller, an unknown key and a missing signature', async () => {
      const wrongSecret = createTaxServiceClient({ baseUrl: sandbox.url, credentials: staticCredentials({ [SELLER]: { ...key, secret: 'guessed' } }), timeoutMs: 400 });
      expect(await failure(wrongSecret.terms(SELLER))).toMatchObject({ code: 4004, upstreamCode: 'SIGNATURE_INVALID' });
      const forgotten: string[] = [];
      const borrowed = createTaxServiceClient({ baseUrl: sandbox.url, credentials: { get: async () => otherKey, forget: (seller) => void forgotten.push(seller) }, timeoutMs: 400 });
      expect(await failure(borrowed.terms(SELLER))).toMatchObject({ code: 4004, upstreamCode: 'KEY_NOT_FOR_SELLER' });
      expect(forgotten).toEqual([SELLER]);
      const unknown = createTaxServiceClient({ baseUrl: sandbox.url, credentials: staticCredentials({ [SELLER]: { keyId: 'sk_nobody', secret: 'x' } }), timeoutMs: 400 });
      expect(await failure(unknown.terms(SELLER))).toMatchObject({ code: 4004, upstreamCode: 'KEY_UNKNOWN' });
      expect(await raw({})).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_MISSING' }, sandbox: true } });
    });

    it('refuses an old timestamp and a replayed nonce', async () => {
      const path = `/v1/sellers/${SELLER}/terms`;
      const old = signRequest(key, { method: 'GET', path, body: '' }, Date.now() - 6 * 60_000);
      expect(await raw(old)).toMatchObject({ status: 401, body: { error: { code: 'TIMESTAMP_SKEW' } } });
      const once = signRequest(key, { method: 'GET', path, body: '' });
      expect((await raw(once)).status).toBe(200);
      expect(await raw(once)).toMatchObject({ status: 401, body: { error: { code: 'NONCE_REUSED' } } });
    });
  });

  describe('faults', () => {
    it('down: unreachable (4001), maybe sent, nothing processed', async () => {
      await fault('down');
      const r = record();
      const error = await failure(client.upload(SELLER, encoded(r)));
      expect(error).toMatchObject({ code: 4001, maybeCommitted: true });
      expect(error.params.sent).toBe('true');
      await admin('DELETE', '/admin/faults');
      expect(await client.status(SELLER, r.number)).toEqual({ number: r.number, known: false });
    });

    it('a stopped service: refused (4001), certainly not sent', async () => {
      const free = createServer();
      await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
      const port = (free.address() as AddressInfo).port;
      await new Promise((resolve) => free.close(resolve));
      const nowhere = createTaxServiceClient({ baseUrl: `http://127.0.0.1:${port}`, credentials: staticCredentials({ [SELLER]: key }), timeoutMs: 400 });
      const error = await failure(nowhere.terms(SELLER));
      expect(error).toMatchObject({ code: 4001, maybeCommitted: false });
      expect(error.params.sent).toBe('false');
    });

    it('hang: times out (4002) after the client\'s timeout; nothing processed', async () => {
      await fault('hang');
      const r = record();
      const started = Date.now();
      expect(await failure(client.upload(SELLER, encoded(r)))).toMatchObject({ code: 4002, maybeCommitted: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      expect(Date.now() - started).toBeLessThan(2000);
      await admin('DELETE', '/admin/faults');
      expect((await client.status(SELLER, r.number)).known).toBe(false);
    });

    it('slow: within the timeout it just works; beyond it the upload times out but was committed, as a status query tells', async () => {
      await fault('slow', { delay_ms: 100 });
      expect((await client.upload(SELLER, encoded(record()))).outcomes[0]!.result).toBe('accepted');
      await fault('slow', { delay_ms: 700 });
      const r = record();
      expect(await failure(client.upload(SELLER, encoded(r)))).toMatchObject({ code: 4002, maybeCommitted: true });
      await admin('DELETE', '/admin/faults');
      await new Promise((resolve) => setTimeout(resolve, 400)); // the sandbox finishes its slow answer
      expect(await client.status(SELLER, r.number)).toMatchObject({ known: true, state: 'accepted', digest: r.digest });
    });

    it('enrolment: a tax service that cannot be reached or fails is an outage (4001 not sent, 4006); one that refuses is 4008', async () => {
      const free = createServer();
      await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
      const port = (free.address() as AddressInfo).port;
      await new Promise((resolve) => free.close(resolve));
      expect(await failure(enroll(`http://127.0.0.1:${port}`, SELLER))).toMatchObject({ code: 4001, maybeCommitted: false, params: { sent: 'false' } });
      await fault('down');
      expect(await failure(enroll(sandbox.url, SELLER))).toMatchObject({ code: 4001, maybeCommitted: false, params: { sent: 'false' } });
      await admin('DELETE', '/admin/faults');
      await fault('error');
      expect(await failure(enroll(sandbox.url, SELLER))).toMatchObject({ code: 4006, maybeCommitted: false });
      await admin('DELETE', '/admin/faults');
      const closedDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
      const closed = await startSandbox({ dataDir: closedDir, openEnrollment: false });
      try {
        const refused = await enroll(closed.url, SELLER).then(() => undefined, (e: unknown) => e);
        expect(refused).not.toBeInstanceOf(UpstreamFault); // not an outage: the circuit does not count it
        expect(refused).toMatchObject({ spec: { code: 4008 }, params: { reason: { en: expect.stringContaining('ENROLLMENT_CLOSED') } } });
      } finally {
        await closed.close();
        rmSync(closedDir, { recursive: true, force: true });
      }
    });

    it('error: 5xx (4006), certainly not processed; safe calls are retried with backoff until it passes', async () => {
      await fault('error', { seconds: 0.25 });
      const r = record();
      expect(await failure(client.upload(SELLER, encoded(r)))).toMatchObject({ code: 4006, maybeCommitted: false });
      const patient = clients({ maxAttempts: 6, baseBackoffMs: 50, maxBackoffMs: 100, random: () => 1 }); // waits 50, 100, 100, 100, 100 ms
      expect((await patient.terms(SELLER)).contingency).toHaveLength(2);
      expect(await patient.status(SELLER, r.number)).toEqual({ number: r.number, known: false });
      const impatient = clients({ maxAttempts: 2, baseBackoffMs: 1, random: () => 1 });
      await fault('error');
      expect(await failure(impatient.terms(SELLER))).toMatchObject({ code: 4006 });
    });

    it('a void is safe to repeat: retried through 5xx like the other repeatable calls (an upload is sent once), a doubled one answers already_voided', async () => {
      const r = record();
      await client.upload(SELLER, encoded(r));
      await fault('error', { seconds: 0.25 });
      const voidedAt = '2026-11-21T15:00:00.000+08:00';
      expect(await failure(client.voidInvoice(SELLER, r.number, { reason: '开错了', voidedAt }))).toMatchObject({ code: 4006, maybeCommitted: false });
      const patient = clients({ maxAttempts: 6, baseBackoffMs: 50, maxBackoffMs: 100, random: () => 1 });
      expect(await patient.voidInvoice(SELLER, r.number, { reason: '开错了', voidedAt })).toMatchObject({ result: 'voided' });
      const twice = record();
      await client.upload(SELLER, encoded(twice));
      await fault('double_ack');
      expect(await client.voidInvoice(SELLER, twice.number, { reason: '开错了', voidedAt })).toMatchObject({ result: 'already_voided', voidedAt });
      expect(await counters(twice.number)).toMatchObject({ voids: 1, echoes: 1 });
    });

    it('garbage: an answer that is not the protocol (4005)', async () => {
      await fault('garbage');
      expect(await failure(client.terms(SELLER))).toMatchObject({ code: 4005 });
    });

    it('lose_response: committed but never answered; the status query finds it accepted, counted once', async () => {
      await fault('lose_response');
      const r = record();
      expect(await failure(client.upload(SELLER, encoded(r)))).toMatchObject({ code: 4001, maybeCommitted: true });
      await admin('DELETE', '/admin/faults');
      expect(await client.status(SELLER, r.number)).toMatchObject({ known: true, state: 'accepted', digest: r.digest });
      expect(await counters(r.number)).toMatchObject({ submissions: 1, accepted: 1, duplicates: 0 });
    });

    it('double_ack: each record acknowledged twice; the client reports one outcome per record', async () => {
      await fault('double_ack');
      const rs = [record(), record()];
      const answer = await client.upload(SELLER, encoded(...rs));
      expect(answer.outcomes).toEqual(rs.map((r) => ({ number: r.number, result: 'accepted' })));
      expect(await counters(rs[0]!.number)).toMatchObject({ submissions: 1, accepted: 1, echoes: 1, duplicates: 0 });
    });

    it('reject: by rule (here special invoices only), with a reason; accepted once the rule is gone', async () => {
      await fault('reject', { kind: 'special' });
      const special = record('special');
      const normal = record('normal');
      expect((await client.upload(SELLER, encoded(special, normal))).outcomes).toEqual([
        { number: special.number, result: 'rejected', reasonCode: 'SANDBOX_RULE', reason: expect.stringContaining('reject') },
        { number: normal.number, result: 'accepted' },
      ]);
      expect(await client.status(SELLER, special.number)).toMatchObject({ known: true, state: 'rejected' });
      await admin('DELETE', '/admin/faults');
      expect((await client.upload(SELLER, encoded(special))).outcomes[0]!.result).toBe('accepted');

      await fault('reject', { min_amount_fen: '10000' }); // the records here are 10000 fen
      const [small, large] = [{ ...record(), totalAmountFen: '9999' }, record()];
      expect((await client.upload(SELLER, encoded(small, large))).outcomes.map((o) => o.result)).toEqual(['accepted', 'rejected']);
      expect((await admin('PUT', '/admin/faults/reject', { min_amount_fen: '1e6' })).error.code).toBe('FAULT_INVALID');
    });

    it('flow_control: answers the wait, refuses (4007, Retry-After) a submission that comes sooner; the client told of the wait does not send one', async () => {
      await fault('flow_control', { wait_seconds: 1 });
      const [told, other] = [clients(), clients()]; // their own: each keeps the waits it was given
      const first = await told.upload(SELLER, encoded(record()));
      expect(first.waitSeconds).toBe(1);
      const early = record();
      const refusedHere = await failure(told.upload(SELLER, encoded(early)));
      expect(refusedHere).toMatchObject({ code: 4007, maybeCommitted: false, retryAfterSeconds: 1, upstreamCode: undefined });
      expect(await counters(early.number)).toBeUndefined(); // never sent
      const refusedThere = await failure(other.upload(SELLER, encoded(early)));
      expect(refusedThere).toMatchObject({ code: 4007, maybeCommitted: false, retryAfterSeconds: 1, upstreamCode: 'FLOW_CONTROL' });
      expect((await told.status(SELLER, early.number)).known).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await told.upload(SELLER, encoded(early))).outcomes[0]!.result).toBe('accepted');
    });

    it('partial: some records are not processed ("failed"); sent again, they are accepted', async () => {
      await fault('partial', { rate: 0.5 });
      const rs = Array.from({ length: 40 }, () => record());
      const answer = await client.upload(SELLER, encoded(...rs));
      const failed = answer.outcomes.filter((o) => o.result === 'failed');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.length).toBeLessThan(40);
      expect(answer.outcomes.filter((o) => o.result === 'accepted')).toHaveLength(40 - failed.length);
      expect(failed[0]).toMatchObject({ reasonCode: 'PARTIAL_FAILURE' });
      expect((await client.status(SELLER, failed[0]!.number)).known).toBe(false);
      await admin('DELETE', '/admin/faults');
      const again = await client.upload(SELLER, encoded(...rs.filter((r) => failed.some((f) => f.number === r.number))));
      expect(again.outcomes.every((o) => o.result === 'accepted')).toBe(true);
    });

    it('a fault with --seconds ends by itself', async () => {
      await fault('error', { seconds: 0.2 });
      await failure(client.terms(SELLER));
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect((await client.terms(SELLER)).contingency).toHaveLength(2);
    });

    it('reports the failure that opened the circuit, not the refusal of the retry that followed it', async () => {
      // A status query or a void is retried; when its own failure opens the circuit, the retry is
      // refused (4003). The call failed on the service (here a 5xx, 4006), and that is what the
      // workers must hear: a 4003 tells them only to wait for the probe.
      const guarded = clients({ failureThreshold: 1, openMs: 5_000, maxAttempts: 3 });
      await fault('error');
      expect(await failure(guarded.status(SELLER, '26352000000000000001'))).toMatchObject({ code: 4006 });
      expect(guarded.circuit()).toMatchObject({ state: 'open', consecutiveFailures: 1 });
      expect(await failure(guarded.status(SELLER, '26352000000000000001'))).toMatchObject({ code: 4003 }); // never tried: refused
    });

    it('the circuit opens after failures in a row, fails fast (4003) while open, and closes after a good probe', async () => {
      const guarded = clients({ failureThreshold: 2, openMs: 300 });
      await fault('error');
      await failure(guarded.terms(SELLER));
      await failure(guarded.terms(SELLER));
      expect(guarded.circuit()).toMatchObject({ state: 'open', lastError: { code: 4006 } });
      const started = Date.now();
      expect(await failure(guarded.terms(SELLER))).toMatchObject({ code: 4003, maybeCommitted: false });
      expect(Date.now() - started).toBeLessThan(50);
      await admin('DELETE', '/admin/faults');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(guarded.circuit().state).toBe('half_open');
      await guarded.terms(SELLER);
      expect(guarded.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    });
  });

  it('a hung request never holds up the shutdown of a server that mounts the sandbox', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
    // Mounted as on Fapiao's own server, where closing waits for requests in flight.
    const host = Fastify({ logger: false });
    await host.register(sandboxPlugin({ dbFile: join(dir, 'sandbox.db') }), { prefix: '/sandbox' });
    await host.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}/sandbox`;
    try {
      const k = await enroll(url, SELLER);
      await fetch(`${url}/admin/faults/hang`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
      const patient = createTaxServiceClient({ baseUrl: url, credentials: staticCredentials({ [SELLER]: k }), timeoutMs: 10_000, maxAttempts: 1 });
      const hung = failure(patient.terms(SELLER));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await host.close();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(await hung).toMatchObject({ code: 4001 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('guards the admin API with a token when given one', async () => {
    const guardedDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
    const guarded = await startSandbox({ dataDir: guardedDir, adminToken: 'let-me-in' });
    try {
      const put = (token?: string) => fetch(`${guarded.url}/admin/faults/down`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(token && { 'x-sandbox-admin-token': token }) }, body: '{}' });
      const refused = await put('guess');
      expect(refused.status).toBe(401);
      expect((await refused.json()).error.code).toBe('ADMIN_TOKEN_REQUIRED');
      expect((await (await fetch(`${guarded.url}/admin/faults`, { headers: { 'x-sandbox-admin-token': 'let-me-in' } })).json()).faults).toEqual([]);
      expect((await put('let-me-in')).status).toBe(200);
    } finally {
      await guarded.close();
      rmSync(guardedDir, { recursive: true, force: true });
    }
  });

  it('a restarted standalone sandbox keeps its invoices, blocks, keys and faults', async () => {
    const kept = record();
    await client.upload(SELLER, encoded(kept));
    const block = await client.allocateBlock(SELLER, 2030, 10, 'before-restart');
    await fault('slow', { delay_ms: 1 });
    const port = Number(new URL(sandbox.url).port);
    await sandbox.close();
    expect(await failure(client.terms(SELLER))).toMatchObject({ code: 4001 });
    sandbox = await startSandbox({ dataDir, port });
    expect((await admin('GET', '/admin/faults')).faults.map((f: any) => f.mode)).toEqual(['slow']);
    expect(await client.status(SELLER, kept.number)).toMatchObject({ known: true, digest: kept.digest });
    expect(await client.allocateBlock(SELLER, 2030, 10, 'before-restart')).toEqual(block);
    expect((await client.allocateBlock(SELLER, 2030, 5)).first).toBe(block.last + 1);
  });
});

for (const s of storesUnderTest) {
  describe(`signing keys kept in the database (${s.name})`, () => {
    it('enrols once, shares the stored key with every instance, and enrols again after the key is forgotten', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
      const sandbox = await startSandbox({ dataDir });
      const opened = await s.open();
      try {
        const seller = validUscc(16_180_339);
        const first = storedCredentials(opened.store, sandbox.url, systemClock);
        const second = storedCredentials(opened.store, sandbox.url, systemClock); // another instance
        const [a, b] = await Promise.all([first.get(seller), second.get(seller)]);
        expect(a).toEqual(b); // two may enrol at once; both end up with the one stored first
        expect(await opened.store.read.upstreamCredentials.get(seller, sandbox.url)).toMatchObject({ keyId: a.keyId, secret: a.secret });
        const client = createTaxServiceClient({ baseUrl: sandbox.url, credentials: second, timeoutMs: 1000 });
        expect((await client.terms(seller)).contingency).toHaveLength(2);

        first.forget(seller, a.keyId);
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(await opened.store.read.upstreamCredentials.get(seller, sandbox.url)).toBeUndefined();
        const renewed = await first.get(seller);
        expect(renewed.keyId).not.toBe(a.keyId);
      } finally {
        await opened.cleanup();
        await sandbox.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
