// A server with several processes stops as a whole. On SIGTERM the primary starts no more
// processes, asks every worker to stop and exits only once they all have: a request in flight is
// answered, and nothing is left behind holding the port or the database (a container's PID 1 takes
// its children with it; a restore run after the stop must find the database closed). A worker that
// does not stop within the bound is killed, and the primary's exit code says so.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createMerchantAndKey, freePort, processExists, serverWorkers, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess,
} from '../support/server-process.js';
import { until } from '../support/until.js';

/** The primary's bound on a worker's stop (STOP_TIMEOUT_MS in src/ops/supervisor.ts). */
const STOP_TIMEOUT_MS = 30_000;

/**
 * An issue request whose body is sent in two parts: the server has it in hand, unfinished, until
 * `finish`. Its connection is kept alive afterwards, as a proxy in front of the server would.
 */
function requestInFlight(server: ServerProcess, apiKey: string) {
  const body = Buffer.from(JSON.stringify(threeLineInvoice('in flight')));
  let finish = () => {};
  const answered = new Promise<{ status: number; at: number }>((resolve, reject) => {
    const call = request(`${server.baseUrl}/api/v1/invoices`, {
      method: 'POST',
      agent: new Agent({ keepAlive: true }),
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': body.length, 'idempotency-key': randomUUID() },
    }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, at: Date.now() }));
    });
    call.on('error', reject);
    call.write(body.subarray(0, 20));
    finish = () => call.end(body.subarray(20));
  });
  answered.catch(() => undefined); // awaited by the test that finishes it
  return { answered, finish: () => finish() };
}

describe('stopping a server with several processes', () => {
  let dir: ReturnType<typeof tempDataDir>;
  let server: ServerProcess;
  let apiKey: string;
  let workers: number[];

  beforeEach(async () => {
    dir = tempDataDir('fapiao-cluster-stop-');
    ({ apiKey } = await createMerchantAndKey(dir.dataDir));
    server = await startServer({ dataDir: dir.dataDir, port: await freePort(), env: { FAPIAO_WORKERS: '2', LOG_LEVEL: 'info' } });
    // Two HTTP processes and, once both listen, the background one.
    workers = await until('three server processes', async () => {
      const pids = serverWorkers(server.pid);
      return pids.length === 3 ? pids : undefined;
    }, 20_000, 50);
  }, 60_000);
  afterEach(async () => {
    await server?.kill('SIGKILL');
    for (const pid of workers.filter(processExists)) process.kill(pid, 'SIGKILL'); // an orphan of a failed test
    dir.remove();
  });

  it('answers a request in flight, and exits 0 only after every worker has exited', async () => {
    const slow = requestInFlight(server, apiKey);
    await sleep(500); // its headers reach an HTTP process
    server.child.kill('SIGTERM');
    await sleep(2_000);
    expect(server.child.exitCode, 'the primary waits for its workers').toBeNull();

    slow.finish();
    const answer = await slow.answered;
    const how = await server.exited;
    const exitedAt = Date.now();
    const left = workers.filter(processExists);

    expect(answer.status).toBe(201);
    expect(answer.at).toBeLessThanOrEqual(exitedAt);
    expect(exitedAt - answer.at, 'a kept-alive connection does not hold the stop').toBeLessThan(5_000);
    expect(left, 'worker processes still running after the primary exited').toEqual([]);
    expect(how, server.output()).toBe(0);
    // Each worker stopped once: SIGTERM, not again when the primary went.
    const stops = server.output().split('\n').filter((line) => line.includes('"msg":"shutting down"'));
    const stopsByPid = new Map<number, number>();
    for (const line of stops) {
      const pid = (JSON.parse(line) as { pid: number }).pid;
      stopsByPid.set(pid, (stopsByPid.get(pid) ?? 0) + 1);
    }
    expect([...stopsByPid.values()].every((count) => count === 1), stops.join('\n')).toBe(true);
    expect(stopsByPid.size).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('kills a worker that has not stopped within the bound, and exits non-zero', async () => {
    const [stuck] = serverWorkers(server.pid, 'http');
    process.kill(stuck!, 'SIGSTOP'); // it cannot even see the SIGTERM
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const how = await server.exited;
    const tookMs = Date.now() - signalledAt;
    const left = workers.filter(processExists);

    expect(tookMs).toBeGreaterThanOrEqual(STOP_TIMEOUT_MS - 1_000);
    expect(tookMs).toBeLessThan(STOP_TIMEOUT_MS + 10_000);
    expect(left, 'worker processes still running after the primary exited').toEqual([]);
    expect(how, server.output()).toBe(1);
    expect(server.output()).toContain(`killed 1 server process(es) still running 30 s after SIGTERM: ${stuck}`);
  }, 90_000);
});
