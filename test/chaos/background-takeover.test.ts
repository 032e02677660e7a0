// The background process killed (kill -9) while it holds upload jobs, mid-submission to a tax
// service that has not answered: the replacement the primary starts takes those jobs over at once
// and uploads them, each exactly once, instead of leaving them until their two-minute lease runs out.
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMerchantAndKeyWith, freePort, postInvoice, serverWorkers, startServer, tempDataDir, SELLER_TAX_ID, threeLineInvoice, type ServerProcess,
} from '../support/server-process.js';
import { until } from '../support/until.js';

describe('a background process killed while it holds upload jobs', () => {
  const dir = tempDataDir('fapiao-takeover-');
  let server: ServerProcess;
  let apiKey: string;
  const sandbox = (method: string, path: string) => fetch(`${server.baseUrl}/sandbox${path}`, { method, headers: { 'content-type': 'application/json' }, ...(method === 'PUT' && { body: '{}' }) });

  beforeAll(async () => {
    ({ apiKey } = await createMerchantAndKeyWith(dir.dataDir, {}));
    // Default leases: uploads hold their jobs for two minutes. A short poll only makes the test quick.
    server = await startServer({ dataDir: dir.dataDir, port: await freePort(), env: { FAPIAO_WORKERS: '2', FAPIAO_UPLOAD_POLL_MS: '100' } });
  }, 60_000);
  afterAll(async () => {
    await server?.kill('SIGTERM');
    dir.remove();
  });

  it('has its replacement upload them within seconds, each once', async () => {
    expect((await sandbox('PUT', '/admin/faults/hang')).ok).toBe(true); // takes the submission, never answers
    const numbers: string[] = [];
    for (let i = 0; i < 20; i++) {
      const answer = await postInvoice(server.baseUrl, apiKey, `takeover-${i}`, JSON.stringify(threeLineInvoice(`takeover ${i}`)));
      expect(answer.status).toBe(201);
      numbers.push((answer.body as { number: string }).number);
    }
    const db = new SQLite(join(dir.dataDir, 'fapiao.db'), { readonly: true });
    const leased = () => (db.prepare(`select count(*) as n from outbox where topic = 'invoice.upload' and done_at is null and lease_owner is not null`).get() as { n: number }).n;
    await until('the background process holding the jobs', async () => (leased() === 20 ? true : undefined), 10_000, 50);
    db.close();

    const [background] = serverWorkers(server.pid, 'background');
    process.kill(background!, 'SIGKILL');
    expect((await sandbox('DELETE', '/admin/faults')).ok).toBe(true);
    const started = Date.now();
    await until('the backlog uploaded by the replacement', async () => {
      const response = await fetch(`${server.baseUrl}/api/v1/status`, { headers: { authorization: `Bearer ${apiKey}` } });
      return ((await response.json()) as { backlog: { count: number } }).backlog.count === 0 ? true : undefined;
    }, 30_000, 200);
    expect(Date.now() - started).toBeLessThan(30_000); // the lease alone would have kept them for 120 s
    expect(serverWorkers(server.pid, 'background')).not.toContain(background);

    const uploads = (await (await sandbox('GET', `/admin/uploads?seller=${SELLER_TAX_ID}`)).json()) as { items: Array<{ number: string; accepted: number }> };
    const accepted = new Map(uploads.items.map((u) => [u.number, u.accepted]));
    for (const number of numbers) expect(accepted.get(number), number).toBe(1);
  }, 90_000);
});
