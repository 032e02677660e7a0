// One HTTP process per core and one background process: when any of them dies (kill -9), the others
// keep answering, the primary starts a replacement of the same kind, and nothing acknowledged is
// lost or doubled; the replaced background process uploads what was issued meanwhile.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMerchantAndKeyWith, freePort, queryAllInvoices, runCli, serverWorkers, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess,
} from '../support/server-process.js';
import { until } from '../support/until.js';

describe('a worker process killed under load', () => {
  const dir = tempDataDir('fapiao-workers-');
  let server: ServerProcess;
  let merchantId: string;
  let apiKey: string;

  beforeAll(async () => {
    // Default leases (uploads and upkeep: two minutes each): a replaced background process takes
    // over those of the one killed at once, or the backlog and the number reserve would wait them out.
    ({ merchantId, apiKey } = await createMerchantAndKeyWith(dir.dataDir, {}));
    server = await startServer({ dataDir: dir.dataDir, port: await freePort(), env: { FAPIAO_WORKERS: '2' } });
  }, 60_000);
  afterAll(async () => {
    await server?.kill('SIGTERM');
    dir.remove();
  });

  it('keeps serving, replaces the worker, and keeps every acknowledged invoice exactly once', async () => {
    const acknowledged = new Map<string, string>(); // key → number
    let stop = false;
    const client = async () => {
      while (!stop) {
        const key = randomUUID();
        const body = JSON.stringify(threeLineInvoice(key));
        // Retry the same key until an answer arrives: a dead worker's connections just drop.
        for (;;) {
          try {
            const response = await fetch(`${server.baseUrl}/api/v1/invoices`, {
              method: 'POST', body, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': key },
              // A connection handed to a worker at the moment it dies can stay open unanswered; a POS
              // system gives up after a while and retries the same key, and so do we.
              signal: AbortSignal.timeout(5_000),
            });
            const answer = (await response.json()) as { number?: string };
            if (response.status === 201) {
              acknowledged.set(key, answer.number!);
              break;
            }
          } catch {
            // connection reset by the killed worker, or no answer in time
          }
          await sleep(20);
        }
      }
    };
    const clients = Array.from({ length: 6 }, client);

    const workersKilled: number[] = [];
    for (let round = 0; round < 6; round++) {
      await sleep(700);
      // Two HTTP processes and the background one (forked once both listen, or replaced by now).
      const workers = await until('three server processes', async () => {
        const pids = serverWorkers(server.pid).filter((pid) => !workersKilled.includes(pid));
        return pids.length === 3 ? pids : undefined;
      }, 20_000, 100);
      process.kill(workers[round % 3]!, 'SIGKILL');
      workersKilled.push(workers[round % 3]!);
      await sleep(900); // the primary replaces it
    }
    stop = true;
    await Promise.all(clients);

    const workersNow = await until('the last one replaced', async () => {
      const pids = serverWorkers(server.pid).filter((pid) => !workersKilled.includes(pid));
      return pids.length === 3 ? pids : undefined;
    }, 20_000, 100);
    for (const pid of workersKilled) expect(workersNow).not.toContain(pid);
    // Whatever was killed, a background process is back and uploads everything.
    await until('the backlog uploaded', async () => {
      const response = await fetch(`${server.baseUrl}/api/v1/status`, { headers: { authorization: `Bearer ${apiKey}` } });
      const status = (await response.json()) as { backlog: { count: number } };
      return status.backlog.count === 0 ? true : undefined;
    }, 30_000, 200);

    await server.kill('SIGTERM');
    const stored = await queryAllInvoices<{ number: string; remarks: string }>(dir.dataDir, merchantId);
    const byKey = new Map(stored.map((i) => [i.remarks, i.number]));
    expect(stored.length).toBe(byKey.size); // no key made two invoices
    for (const [key, number] of acknowledged) expect(byKey.get(key)).toBe(number);
    const sequences = stored.map((i) => Number(i.number.slice(5))).sort((a, b) => a - b);
    expect(sequences).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect((await runCli(dir.dataDir, ['chain', 'verify'])).code).toBe(0);
    expect(acknowledged.size).toBeGreaterThan(50);
  }, 120_000);
});
