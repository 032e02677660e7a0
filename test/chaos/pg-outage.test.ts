// The database goes away under load and comes back. While it is away every issue call answers
// within a bound — 503, fault 5001, Retry-After — and /readyz says 503 5001; nothing hangs and
// nothing leaks a 9001. When it is back the same server process serves again by itself, and
// every invoice that was answered 201 (before, during, after) is stored exactly once, numbers run
// without a gap and the hash chains verify.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startCluster, type PgSingle } from '../support/pg-cluster.js';
import {
  createMerchantAndKeyWith, freePort, postInvoice, probeReady, queryAllInvoicesWith, runCli, sleep, startServer, tempDataDir, threeLineInvoice,
  type CallOutcome, type ServerProcess,
} from '../support/server-process.js';

const CLIENTS = 6;
const BEFORE_MS = 1_500;
const DOWN_MS = 4_000;
const AFTER_MS = 1_500;
/** Every issue call made while the database is away must be answered within this. */
const ANSWER_BOUND_MS = 5_000;
/** The server must serve again within this after the database is back. */
const RECOVERY_BOUND_MS = 10_000;
/** Clients stop retrying a key after this, so a server that never recovers fails the test instead of timing it out. */
const GIVE_UP_MS = 35_000;

interface KeyRecord {
  key: string;
  body: string;
  calls: CallOutcome[];
  number?: string;
}

interface StoredInvoice {
  number: string;
  remarks: string;
}

describe.skipIf(!postgresInstalled)('PostgreSQL outage: the database stops under load and starts again', () => {
  const dir = tempDataDir('fapiao-pg-outage-');
  let cluster: PgSingle | undefined;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await cluster?.remove();
    dir.remove();
  });

  it('answers 503 5001 with Retry-After while down, recovers without a restart, loses and repeats nothing', async () => {
    const env = { DATABASE_URL: cluster!.url, FAPIAO_WORKERS: '1' };
    const { merchantId, apiKey } = await createMerchantAndKeyWith(dir.dataDir, env);
    server = await startServer({ dataDir: dir.dataDir, port: await freePort(), env });
    const baseUrl = server.baseUrl;

    const keys: KeyRecord[] = [];
    const ready: CallOutcome[] = [];
    let stopping = false;

    const giveUpAt = Date.now() + GIVE_UP_MS;
    const issue = async (record: KeyRecord): Promise<void> => {
      while (Date.now() < giveUpAt) {
        const call = await postInvoice(baseUrl, apiKey, record.key, record.body, 30_000);
        record.calls.push(call);
        if (call.status === 201) {
          record.number = (call.body as { number: string }).number;
          return;
        }
        if (call.status !== 503 && call.status !== 0) return; // unexpected: reported below
        await sleep(50 + Math.random() * 100); // keep the pressure on rather than honour Retry-After
      }
    };
    const client = async (id: number) => {
      for (let n = 1; !stopping; n++) {
        const key = `outage-${id}-${n}`;
        const record: KeyRecord = { key, body: JSON.stringify(threeLineInvoice(key)), calls: [] };
        keys.push(record);
        await issue(record);
        await sleep(Math.random() * 40);
      }
    };
    const readiness = async () => {
      while (!stopping) {
        ready.push(await probeReady(baseUrl));
        await sleep(100);
      }
    };

    const clients = [...Array.from({ length: CLIENTS }, (_, i) => client(i + 1)), readiness()];
    let stopCalledAt = 0;
    let downAt = 0;
    let startCalledAt = 0;
    let upAt = 0;
    let firstIssuedAfter: number | undefined;
    try {
      await sleep(BEFORE_MS);
      stopCalledAt = Date.now();
      await cluster!.node.stop('immediate');
      downAt = Date.now();
      await sleep(DOWN_MS);
      startCalledAt = Date.now();
      await cluster!.node.start();
      upAt = Date.now();
      const deadline = upAt + RECOVERY_BOUND_MS;
      while (Date.now() < deadline) {
        const first = Math.min(...keys.flatMap((k) => k.calls).filter((c) => c.status === 201 && c.startedAt >= startCalledAt).map((c) => c.startedAt + c.ms));
        if (Number.isFinite(first)) {
          firstIssuedAfter = first;
          break;
        }
        await sleep(50);
      }
      await sleep(AFTER_MS);
    } finally {
      stopping = true;
      await Promise.all(clients);
    }

    const calls = keys.flatMap((k) => k.calls);
    const endOf = (c: CallOutcome) => c.startedAt + c.ms;
    // Started once the database had stopped, and answered before it was asked to start again.
    const whileDown = calls.filter((c) => c.startedAt >= downAt && endOf(c) < startCalledAt);
    const startedWhileDown = calls.filter((c) => c.startedAt >= downAt && c.startedAt < startCalledAt);
    const readyWhileDown = ready.filter((r) => r.startedAt >= downAt && endOf(r) < startCalledAt);
    const firstReadyAfter = ready.find((r) => r.startedAt >= startCalledAt && r.status === 200);
    const unexpected = calls.filter((c) => c.status !== 201 && c.status !== 503).map((c) => `HTTP ${c.status} ${c.failure ?? JSON.stringify(c.body).slice(0, 300)}`);

    const stored = await queryAllInvoicesWith<StoredInvoice>(dir.dataDir, merchantId, env);
    const chain = await runCli(dir.dataDir, ['chain', 'verify', '--json'], env);
    const answered = keys.filter((k) => k.number !== undefined);
    // Calls the stop caught in flight: whether they committed or not, a retry with the key settles it.
    const caughtInFlight = calls.filter((c) => c.startedAt < stopCalledAt && endOf(c) >= stopCalledAt);
    const since = (at: number | undefined) => (at === undefined ? '—' : `${at - startCalledAt} ms`);

    console.log(
      `pg outage: down ${((startCalledAt - downAt) / 1000).toFixed(1)} s (pg_ctl stop took ${downAt - stopCalledAt} ms, start ${upAt - startCalledAt} ms); ` +
        `${calls.length} issue calls, ${caughtInFlight.length} caught in flight by the stop (${caughtInFlight.filter((c) => c.status === 201).length}× 201), ` +
        `${whileDown.length} answered while down (slowest ${Math.max(0, ...startedWhileDown.map((c) => c.ms))} ms, ${whileDown.filter((c) => c.status === 503).length}× 503); ` +
        `${keys.length} keys, ${answered.length} answered 201, ${stored.length} stored; readyz ${readyWhileDown.length}× while down; ` +
        `after pg_ctl start was called: first 201 at ${since(firstIssuedAfter)}, readyz 200 at ${since(firstReadyAfter?.startedAt)}`,
    );

    expect(server.child.exitCode ?? server.child.signalCode, `the server process kept running:\n${server.output()}`).toBeNull();
    expect(unexpected.slice(0, 10)).toEqual([]);

    // While down: always an answer, in bounded time, and always the same one.
    expect(whileDown.length).toBeGreaterThan(20);
    expect(startedWhileDown.filter((c) => c.ms > ANSWER_BOUND_MS || c.status === 0).map((c) => `${c.status} after ${c.ms} ms`)).toEqual([]);
    const notUnavailable = whileDown.filter((c) => !(c.status === 503 && c.code === 5001 && c.retryAfter !== null && Number(c.retryAfter) > 0));
    expect(notUnavailable.map((c) => `${c.status} ${c.code} retry-after=${c.retryAfter}`)).toEqual([]);
    expect(readyWhileDown.length).toBeGreaterThan(5);
    expect(readyWhileDown.filter((r) => !(r.status === 503 && r.code === 5001 && r.ms <= ANSWER_BOUND_MS)).map((r) => `${r.status} ${r.code} ${r.ms} ms`)).toEqual([]);

    // Back by itself: issuing and /readyz, without a restart.
    expect(firstIssuedAfter, 'a 201 after the database came back').toBeDefined();
    expect(firstReadyAfter, '/readyz 200 after the database came back').toBeDefined();
    expect(ready.at(-1)?.status).toBe(200);
    expect(answered.length).toBe(keys.length); // every key was retried until it got its 201
    expect(answered.filter((k) => k.calls[0]!.startedAt > upAt).length).toBeGreaterThan(10);

    // Every 201 is stored once, as the invoice of that request; one invoice per key; nothing else.
    const byNumber = new Map(stored.map((i) => [i.number, i]));
    expect(byNumber.size).toBe(stored.length);
    for (const k of answered) expect(byNumber.get(k.number!)?.remarks, `${k.key} → ${k.number}`).toBe(k.key);
    const perKey = new Map<string, number>();
    for (const invoice of stored) perKey.set(invoice.remarks, (perKey.get(invoice.remarks) ?? 0) + 1);
    expect([...perKey].filter(([, n]) => n > 1)).toEqual([]);
    expect(stored.length).toBe(answered.length);

    // Numbers: one series, consecutive from 1.
    const sequences = stored.map((i) => Number(i.number.slice(5))).sort((a, b) => a - b);
    expect(sequences.filter((s, i) => s !== i + 1).slice(0, 5)).toEqual([]);

    expect(chain.code, chain.stdout + chain.stderr).toBe(0);
    expect((JSON.parse(chain.stdout) as { ok: boolean }).ok).toBe(true);
  }, 60_000);
});
