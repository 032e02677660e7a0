// A full disk under the embedded database: issuing is refused with 5002 (and nothing half-written),
// the database stays intact, and service resumes by itself once space is freed. The data directory
// is a small tmpfs of its own, so the rest of the machine never fills up.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, writeSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMerchantAndKey, freePort, queryAllInvoices, runCli, startServer, threeLineInvoice, type ServerProcess } from '../support/server-process.js';

const mountPoint = mkdtempSync(join(tmpdir(), 'fapiao-full-'));
const canMount = (() => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canMount)('a full disk under SQLite', () => {
  const dataDir = join(mountPoint, 'data');
  const filler = join(mountPoint, 'filler');
  let server: ServerProcess;
  let apiKey: string;
  let merchantId: string;
  const acknowledged: string[] = [];

  beforeAll(async () => {
    ({ merchantId, apiKey } = await createMerchantAndKey(dataDir));
    server = await startServer({ dataDir, port: await freePort(), env: { FAPIAO_WORKERS: '1' } });
  }, 60_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    if (canMount) execFileSync('umount', [mountPoint]);
    rmdirSync(mountPoint);
  });

  const issue = async () => {
    const response = await fetch(`${server.baseUrl}/api/v1/invoices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify(threeLineInvoice()),
    });
    const body = (await response.json()) as { number?: string; error?: { code: number } };
    if (response.status === 201) acknowledged.push(body.number!);
    return { status: response.status, code: body.error?.code };
  };

  function fillTheDisk(): void {
    const fd = openSync(filler, 'w');
    const block = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) writeSync(fd, block);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      // fill the last bytes too, so even a small write cannot fit
      for (let size = 32 * 1024; size >= 1; size = Math.floor(size / 2)) {
        try {
          for (;;) writeSync(fd, block.subarray(0, size));
        } catch {
          // next smaller size
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  it('refuses with 5002 while full, changes nothing, and recovers by itself when space is freed', async () => {
    for (let i = 0; i < 5; i++) expect((await issue()).status).toBe(201);

    fillTheDisk();
    const refusals = [];
    for (let i = 0; i < 20; i++) refusals.push(await issue());
    expect(refusals.filter((r) => r.status === 201).length).toBeLessThan(refusals.length);
    for (const refusal of refusals.filter((r) => r.status !== 201)) expect(refusal).toEqual({ status: 507, code: 5002 });
    const ready = await fetch(`${server.baseUrl}/readyz`);
    expect(ready.status).toBe(507);

    rmSync(filler);
    const after = [];
    for (let i = 0; i < 5; i++) after.push(await issue());
    expect(after.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
    expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);

    await server.kill('SIGKILL');
    const db = new SQLite(join(dataDir, 'fapiao.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const stored = (await queryAllInvoices<{ number: string }>(dataDir, merchantId)).map((i) => i.number).sort();
    expect(stored).toEqual([...acknowledged].sort());
    const sequences = stored.map((n) => Number(n.slice(5)));
    expect(sequences).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect((await runCli(dataDir, ['chain', 'verify'])).code).toBe(0);
  }, 120_000);
});
