// R6 under a crash: the real server is SIGKILLed again and again while eight clients issue
// invoices. Whatever was answered 201 must still be there afterwards, numbers must run from
// …001 without a gap or a repeat, an Idempotency-Key retried after a lost answer must give back
// the invoice it already made (never a second one), and the hash chains must verify.
import { afterAll, describe, expect, it } from 'vitest';
import {
  createMerchantAndKey, freePort, queryAllInvoices, runCli, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess,
} from '../support/server-process.js';

const CLIENTS = 8;
const CYCLES = 12;
/** Time between clients' invoices; keeps the final CLI paging short without idling the server. */
const THINK_MS = 30;

interface KeyRecord {
  key: string;
  body: string;
  /** Attempts that ended without any HTTP answer (connection refused, reset, closed). */
  unanswered: number;
  number?: string;
  /** The 201 said `idempotent-replayed: true`: an earlier attempt had committed. */
  replayed?: boolean;
}

interface StoredInvoice {
  number: string;
  remarks: string;
  chain_hash: string;
}

describe('crash: SIGKILL while issuing', () => {
  const dir = tempDataDir('fapiao-crash-');
  afterAll(() => dir.remove());

  it('keeps every 201, numbers run without gaps, one invoice per Idempotency-Key, chains verify', async () => {
    const { merchantId, apiKey } = await createMerchantAndKey(dir.dataDir);
    const port = await freePort();
    let server: ServerProcess = await startServer({ dataDir: dir.dataDir, port });

    const keys: KeyRecord[] = [];
    const unexpected: string[] = [];
    let stopping = false;
    let connectionErrors = 0;
    let busyAnswers = 0;

    const issue = async (record: KeyRecord): Promise<void> => {
      for (;;) {
        let response: Response;
        try {
          response = await fetch(`${server.baseUrl}/api/v1/invoices`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': record.key },
            body: record.body,
            signal: AbortSignal.timeout(15_000),
          });
        } catch {
          // No answer: the server died with the request in flight, or is still down. Same key, same body.
          record.unanswered += 1;
          connectionErrors += 1;
          await sleep(20 + Math.random() * 60);
          continue;
        }
        let text: string;
        try {
          text = await response.text();
        } catch {
          record.unanswered += 1; // the head arrived, the body did not: still no answer
          connectionErrors += 1;
          continue;
        }
        if (response.status === 201) {
          record.number = (JSON.parse(text) as { number: string }).number;
          record.replayed = response.headers.get('idempotent-replayed') === 'true';
          return;
        }
        if (response.status === 503 || response.status === 429) {
          busyAnswers += 1;
          await sleep(50);
          continue;
        }
        unexpected.push(`${record.key}: HTTP ${response.status} ${text.slice(0, 300)}`);
        return;
      }
    };

    const client = async (id: number) => {
      for (let n = 1; !stopping; n++) {
        const key = `crash-${id}-${n}`;
        const record: KeyRecord = { key, body: JSON.stringify(threeLineInvoice(key)), unanswered: 0 };
        keys.push(record);
        await issue(record); // finishes even after `stopping`: every key ends answered
        await sleep(Math.random() * THINK_MS * 2); // mean THINK_MS
      }
    };

    const started = Date.now();
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i + 1));
    const restarts: number[] = [];
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        await sleep(300 + Math.random() * 1200);
        await server.kill('SIGKILL');
        const down = Date.now();
        server = await startServer({ dataDir: dir.dataDir, port });
        restarts.push(Date.now() - down);
      }
    } finally {
      stopping = true;
      await Promise.all(clients);
      await server.kill('SIGKILL'); // the last stop is a crash too
    }
    const issuingMs = Date.now() - started;

    // Everything below reads the data directory with the server gone, through the CLI.
    const stored = await queryAllInvoices<StoredInvoice>(dir.dataDir, merchantId);
    const chain = await runCli(dir.dataDir, ['chain', 'verify', '--json']);

    const answered = keys.filter((k) => k.number !== undefined);
    const retried = keys.filter((k) => k.unanswered > 0);
    const committedBeforeLostAnswer = retried.filter((k) => k.replayed);
    const byNumber = new Map(stored.map((i) => [i.number, i]));
    const byKey = new Map<string, StoredInvoice[]>();
    for (const invoice of stored) byKey.set(invoice.remarks, [...(byKey.get(invoice.remarks) ?? []), invoice]);
    const sentKeys = new Set(keys.map((k) => k.key));

    console.log(
      `crash test: ${restarts.length} kill/restart cycles in ${(issuingMs / 1000).toFixed(1)} s ` +
        `(restart ${Math.min(...restarts)}–${Math.max(...restarts)} ms), ${keys.length} keys, ${answered.length} answered 201, ` +
        `${stored.length} stored; ${connectionErrors} requests without an answer, ${retried.length} keys retried, ` +
        `${committedBeforeLostAnswer.length} of them had committed before the answer was lost (replayed), ${busyAnswers} busy answers`,
    );

    expect(unexpected).toEqual([]);
    expect(restarts.length).toBeGreaterThanOrEqual(10);
    expect(answered.length).toBe(keys.length); // every key was retried until answered
    expect(answered.length).toBeGreaterThan(100);

    // Every 201 is stored, once, and is the invoice of that request.
    for (const k of answered) expect(byNumber.get(k.number!)?.remarks, `${k.key} → ${k.number}`).toBe(k.key);
    expect(byNumber.size).toBe(stored.length);

    // One invoice per Idempotency-Key; nothing stored that no client asked for.
    const duplicated = [...byKey].filter(([, list]) => list.length > 1).map(([key, list]) => `${key}: ${list.map((i) => i.number).join(', ')}`);
    expect(duplicated).toEqual([]);
    expect([...byKey.keys()].filter((key) => !sentKeys.has(key))).toEqual([]);
    const committedKeys = new Set([...answered.map((k) => k.key), ...byKey.keys()]);
    expect(stored.length).toBe(committedKeys.size);

    // A retry after a lost answer returned the invoice the first attempt had made.
    for (const k of committedBeforeLostAnswer) expect(byKey.get(k.key)?.[0]?.number).toBe(k.number);

    // Numbers: one series, consecutive from …000000000000001.
    const prefixes = new Set(stored.map((i) => i.number.slice(0, 5)));
    expect(prefixes.size).toBe(1);
    const sequences = stored.map((i) => Number(i.number.slice(5))).sort((a, b) => a - b);
    const gaps = sequences.filter((s, i) => s !== i + 1).slice(0, 5);
    expect(gaps).toEqual([]);

    expect(chain.code, chain.stdout + chain.stderr).toBe(0);
    expect((JSON.parse(chain.stdout) as { ok: boolean }).ok).toBe(true);
  }, 180_000);
});
