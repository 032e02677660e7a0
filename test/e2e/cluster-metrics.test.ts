// With one HTTP process per core and a background process, one scrape of /metrics speaks for all of
// them: whichever process the scrape reaches answers at once with the sum over every process and
// the primary (scheduled backups). Counters never go down when a process dies and is replaced.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import {
  createMerchantAndKey, freePort, processExists, serverWorkers, sleep, startServer, tempDataDir, threeLineInvoice, waitReady, type ServerProcess,
} from '../support/server-process.js';
import { until } from '../support/until.js';

const ISSUED = 20;
/** How often a worker reports its counts to the primary (REPORT_INTERVAL_MS in src/ops/cluster-metrics.ts). */
const REPORT_INTERVAL_MS = 5_000;

/** The value of the series `name` with (at least) these labels, 0 when it is not there yet. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const pairs = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && pairs.every((pair) => l.includes(pair)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const issued = (scraped: string) => sample(scraped, 'fapiao_invoices_issued_total', { kind: 'normal' });

describe('/metrics on a server with several processes', () => {
  const dir = tempDataDir('fapiao-cluster-metrics-');
  let server: ServerProcess;
  let apiKey: string;

  beforeAll(async () => {
    ({ apiKey } = await createMerchantAndKey(dir.dataDir));
    const backups = { FAPIAO_BACKUP_DIR: join(dir.dataDir, 'backups'), FAPIAO_BACKUP_EVERY_HOURS: '24' }; // the first one at once
    server = await startServer({ dataDir: dir.dataDir, port: await freePort(), env: { FAPIAO_WORKERS: '2', ...backups } });
  }, 60_000);
  afterAll(async () => {
    await server?.kill('SIGTERM');
    dir.remove();
  });

  async function scrape(): Promise<string> {
    const started = performance.now();
    // A new connection each time, so scrapes reach both HTTP processes.
    const response = await fetch(`${server.baseUrl}/metrics`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    expect(performance.now() - started).toBeLessThan(2_000);
    return text;
  }

  /**
   * Each request on its own connection: the primary hands connections to the HTTP processes in
   * turn, so both count some of these invoices and neither counts all of them.
   */
  async function issueInvoices(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const key = randomUUID();
      const response = await fetch(`${server.baseUrl}/api/v1/invoices`, {
        method: 'POST', body: JSON.stringify(threeLineInvoice(key)),
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': key, connection: 'close' },
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status).toBe(201);
    }
  }

  /**
   * kill -9, then wait until the primary has reaped the process (a zombie keeps its /proc entry):
   * node:cluster hands a connection that arrives before then to the dead process, where it hangs.
   */
  async function killWorker(pid: number): Promise<void> {
    process.kill(pid, 'SIGKILL');
    await until(`process ${pid} reaped`, async () => (processExists(pid) ? undefined : true), 10_000);
  }

  it('sums what every HTTP process and the background process counted', async () => {
    await issueInvoices(ISSUED);

    // Uploads are counted by the background process alone.
    const text = await until('every upload counted', async () => {
      const scraped = await scrape();
      const uploaded = ['done', 'handled'].reduce((sum, outcome) => sum + sample(scraped, 'fapiao_outbox_jobs_total', { topic: 'invoice.upload', outcome }), 0);
      return uploaded >= ISSUED ? scraped : undefined;
    }, 30_000);

    expect(issued(text)).toBe(ISSUED);
    expect(sample(text, 'fapiao_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/invoices', status: '201' })).toBe(ISSUED);
    // Every process's SQLite group commits, summed by role (what each phase covers:
    // test/integration/group-commit.test.ts): the issues' in the HTTP processes, the uploads' in the background one.
    expect(sample(text, 'fapiao_sqlite_commit_batch_units_count', { role: 'http' })).toBeGreaterThanOrEqual(ISSUED);
    expect(sample(text, 'fapiao_sqlite_commit_batch_units_count', { role: 'background' })).toBeGreaterThan(0);
    for (const role of ['http', 'background']) {
      const commits = sample(text, 'fapiao_sqlite_commit_batch_units_count', { role });
      for (const phase of ['lock_wait', 'transaction', 'durable']) expect(sample(text, 'fapiao_sqlite_commit_phase_seconds_count', { role, phase })).toBe(commits);
    }
    for (let i = 0; i < 4; i++) expect(issued(await scrape())).toBe(ISSUED);

    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (!promtool.error) expect(promtool.status, `${promtool.stdout}${promtool.stderr}`).toBe(0);
  }, 60_000);

  it('shows the scheduled backups, which the primary takes', async () => {
    const lastBackup = await until('a scheduled backup in /metrics', async () => {
      const seconds = sample(await scrape(), 'fapiao_backup_last_success_timestamp_seconds');
      return seconds > 0 ? seconds : undefined;
    }, 30_000, 250);
    expect(Math.abs(lastBackup * 1000 - Date.now())).toBeLessThan(60_000);
    expect(await scrape()).toContain('# TYPE fapiao_backup_failures_total counter');
  }, 60_000);

  it('never lowers a counter when HTTP processes are killed and replaced', async () => {
    const before = issued(await scrape());
    await issueInvoices(10);
    expect(issued(await scrape())).toBe(before + 10);

    // What the killed process counted was in that scrape; the primary keeps it.
    await killWorker(serverWorkers(server.pid, 'http')[0]!);
    expect(issued(await scrape())).toBe(before + 10);

    // Counted but never scraped: every process reports its counts to the primary every few seconds.
    await issueInvoices(10);
    await sleep(REPORT_INTERVAL_MS + 1_000);
    for (const pid of serverWorkers(server.pid, 'http')) await killWorker(pid);
    await waitReady(server.baseUrl);
    expect(issued(await scrape())).toBe(before + 20);
  }, 60_000);
});
