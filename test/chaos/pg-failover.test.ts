// The primary database dies (kill -9) under load and its synchronous standby is promoted. Two
// Fapiao instances, configured with both hosts and target_session_attrs=read-write, find the new
// primary by themselves. Clients retry a request that got no answer or a 503 with the same
// Idempotency-Key until it gets its 201. Afterwards the new primary holds every invoice that was
// ever acknowledged, once (RPO 0), one per key, numbered without a gap, with chains that verify;
// and we say how long issuing was impossible.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startPrimaryWithSyncStandby, type PgPair } from '../support/pg-cluster.js';
import {
  createMerchantAndKeyWith, freePort, postInvoice, probeReady, queryAllInvoicesWith, runCli, sleep, startServer, tempDataDir, threeLineInvoice,
  type CallOutcome, type ServerProcess,
} from '../support/server-process.js';

const INSTANCES = 2;
const CLIENTS = 8;
const BEFORE_MS = 2_000;
const AFTER_MS = 2_000;
/** Issuing must resume within this after the kill. */
const SERVICE_GAP_BOUND_MS = 15_000;
/** Clients stop retrying a key after this, so a stuck failover fails the test instead of timing it out. */
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

describe.skipIf(!postgresInstalled)('PostgreSQL failover: the primary is killed, the synchronous standby promoted', () => {
  const dirs = Array.from({ length: INSTANCES }, () => tempDataDir('fapiao-pg-failover-'));
  let pair: PgPair | undefined;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    pair = await startPrimaryWithSyncStandby();
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill('SIGKILL')));
    await pair?.remove();
    for (const dir of dirs) dir.remove();
  });

  it('keeps every acknowledged invoice once on the new primary, gap-free, chains intact', async () => {
    const env = { DATABASE_URL: pair!.url, FAPIAO_WORKERS: '1' };
    const { merchantId, apiKey } = await createMerchantAndKeyWith(dirs[0]!.dataDir, env);
    for (const dir of dirs) servers.push(await startServer({ dataDir: dir.dataDir, port: await freePort(), env }));

    const keys: KeyRecord[] = [];
    let stopping = false;
    const giveUpAt = Date.now() + GIVE_UP_MS;

    const issue = async (record: KeyRecord, client: number): Promise<void> => {
      for (let attempt = 0; Date.now() < giveUpAt; attempt++) {
        // Retries may land on the other instance, as behind a load balancer.
        const server = servers[(client + attempt) % servers.length]!;
        const call = await postInvoice(server.baseUrl, apiKey, record.key, record.body, 15_000);
        record.calls.push(call);
        if (call.status === 201) {
          record.number = (call.body as { number: string }).number;
          return;
        }
        if (call.status !== 503 && call.status !== 0) return; // unexpected: reported below
        await sleep(50 + Math.random() * 50);
      }
    };
    const client = async (id: number) => {
      for (let n = 1; !stopping; n++) {
        const key = `failover-${id}-${n}`;
        const record: KeyRecord = { key, body: JSON.stringify(threeLineInvoice(key)), calls: [] };
        keys.push(record);
        await issue(record, id);
        await sleep(Math.random() * 40);
      }
    };

    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
    let killAt = 0;
    let killedAt = 0;
    let promotedAt = 0;
    let firstServedAt: number | undefined;
    const firstServiceAfterKill = () =>
      Math.min(...keys.flatMap((k) => k.calls).filter((c) => c.status === 201 && c.startedAt >= killAt).map((c) => c.startedAt + c.ms));
    try {
      await sleep(BEFORE_MS);
      killAt = Date.now();
      await pair!.primary.kill9();
      killedAt = Date.now();
      await pair!.standby.promote();
      promotedAt = Date.now();
      while (Date.now() < killAt + SERVICE_GAP_BOUND_MS) {
        const first = firstServiceAfterKill();
        if (Number.isFinite(first)) {
          firstServedAt = first;
          break;
        }
        await sleep(20);
      }
      await sleep(AFTER_MS);
    } finally {
      stopping = true;
      await Promise.all(clients);
    }
    const readyAfter = await Promise.all(servers.map((s) => probeReady(s.baseUrl)));

    // Read back from the promoted standby itself.
    const newPrimary = { DATABASE_URL: pair!.standby.url };
    const recovery = (await pair!.standby.query<{ recovery: boolean }>('select pg_is_in_recovery() as recovery'))[0]?.recovery;
    const stored = await queryAllInvoicesWith<StoredInvoice>(dirs[0]!.dataDir, merchantId, newPrimary);
    const chain = await runCli(dirs[0]!.dataDir, ['chain', 'verify', '--json'], newPrimary);

    const calls = keys.flatMap((k) => k.calls);
    const unexpected = calls.filter((c) => c.status !== 201 && c.status !== 503 && c.status !== 0).map((c) => `HTTP ${c.status} ${JSON.stringify(c.body).slice(0, 300)}`);
    const answered = keys.filter((k) => k.number !== undefined);
    const before = answered.filter((k) => k.calls.at(-1)!.startedAt + k.calls.at(-1)!.ms < killAt);
    const across = answered.filter((k) => k.calls[0]!.startedAt < killAt && !before.includes(k));
    const after = answered.filter((k) => k.calls[0]!.startedAt >= killAt);
    const gapMs = firstServedAt !== undefined ? firstServedAt - killAt : undefined;

    console.log(
      `pg failover: no service for ${gapMs !== undefined ? (gapMs / 1000).toFixed(2) : '—'} s (kill ${killedAt - killAt} ms, promote ${promotedAt - killedAt} ms, ` +
        `first 201 ${firstServedAt !== undefined ? firstServedAt - promotedAt : '—'} ms after promotion); ${keys.length} keys, ${answered.length} answered 201 ` +
        `(${before.length} before the kill, ${across.length} across it, ${after.length} after), ${stored.length} on the new primary; ` +
        `${calls.filter((c) => c.status === 503).length}× 503, ${calls.filter((c) => c.status === 0).length} without an answer, ` +
        `${answered.filter((k) => k.calls.at(-1)!.replayed).length} replayed`,
    );

    for (const s of servers) expect(s.child.exitCode ?? s.child.signalCode, `instance on ${s.port} kept running:\n${s.output()}`).toBeNull();
    expect(unexpected.slice(0, 10)).toEqual([]);
    expect(recovery).toBe(false);
    expect(gapMs, 'issuing resumed after the failover').toBeDefined();
    expect(before.length).toBeGreaterThan(20);
    expect(after.length).toBeGreaterThan(20);
    expect(answered.length).toBe(keys.length); // every key retried until it got its 201
    expect(readyAfter.map((r) => r.status)).toEqual(servers.map(() => 200));

    // RPO 0: every acknowledged invoice is on the new primary, as the invoice of that request.
    const byNumber = new Map(stored.map((i) => [i.number, i]));
    expect(byNumber.size).toBe(stored.length);
    const missing = answered.filter((k) => byNumber.get(k.number!)?.remarks !== k.key).map((k) => `${k.key} → ${k.number}: ${byNumber.get(k.number!)?.remarks ?? 'missing'}`);
    expect(missing).toEqual([]);

    // One invoice per Idempotency-Key, and none that no client asked for.
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
