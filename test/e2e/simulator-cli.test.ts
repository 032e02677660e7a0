// `fapiao simulator` as an operator uses it: two real sandbox processes on ONE data directory (as
// when several server processes mount it) act as one tax service, and `simulator fault` switches
// their faults at run time through either of them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaxServiceClient } from '../../src/upstream/client.js';
import { enroll, staticCredentials } from '../../src/upstream/credentials.js';
import { encodeUploadRecord, type NumberBlock, type UploadRecord } from '../../src/upstream/protocol.js';
import { validUscc } from '../support/http.js';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-simulator-'));
const SELLER = '91350100M000100Y43';

async function fapiao(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return fapiaoWith({}, ...args);
}

async function fapiaoWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/fapiao.mjs', ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Starts `fapiao simulator` on a free port and waits for the line that says where it listens. */
async function startSimulator(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn('node', ['bin/fapiao.mjs', 'simulator', '--port', '0', '--data-dir', dataDir, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  for await (const line of createInterface({ input: child.stdout! })) {
    text += line;
    try {
      return { child, url: (JSON.parse(text) as { url: string }).url };
    } catch {
      // the JSON object spans several lines
    }
  }
  throw new Error('the simulator ended before it listened');
}

describe('fapiao simulator', () => {
  let one: { child: ChildProcess; url: string };
  let two: { child: ChildProcess; url: string };

  beforeAll(async () => {
    [one, two] = await Promise.all([startSimulator(), startSimulator()]);
  }, 30_000);
  afterAll(() => {
    for (const s of [one, two]) s?.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  // Each CLI run costs seconds (a whole program starts), so the admin API sets up around them.
  const admin = (url: string, method: string, path: string, body?: object) =>
    fetch(`${url}${path}`, { method, ...(body && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) }).then((r) => r.json() as Promise<any>);

  it('sets, shows and clears faults at run time, seen by every process on the data directory', async () => {
    const set = await fapiao('simulator', 'fault', 'slow', '--rate', '0.5', '--delay-ms', '10', '--url', one.url, '--json');
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ sandbox: true, faults: [{ mode: 'slow', rate: 0.5, delayMs: 10 }] });
    await admin(one.url, 'PUT', '/admin/faults/partial', { rate: 0.1, seconds: 60 });
    await new Promise((resolve) => setTimeout(resolve, 300)); // each process caches the faults for 250 ms
    const shown = await fapiao('simulator', 'fault', 'show', '--url', two.url);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^partial\trate 0\.1 until .*\nslow\trate 0\.5\tdelay 10 ms/);

    const cleared = await fapiao('simulator', 'fault', 'clear', 'slow', '--url', two.url, '--json');
    expect(JSON.parse(cleared.stdout).faults.map((f: { mode: string }) => f.mode)).toEqual(['partial']);
    await admin(one.url, 'DELETE', '/admin/faults');
  });

  it('refuses an unknown mode or an impossible rate with 1051, and changes nothing', async () => {
    await admin(one.url, 'PUT', '/admin/faults/error', { rate: 0.2 });
    const unknown = await fapiao('simulator', 'fault', 'meteor', '--url', one.url, '--json');
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout).error).toMatchObject({ code: 1051 });
    const rate = await fapiao('simulator', 'fault', 'error', '--rate', '1.5', '--url', one.url);
    expect(rate.code).toBe(2);
    expect(rate.stderr).toContain('1051');
    expect((await admin(one.url, 'GET', '/admin/faults')).faults).toEqual([expect.objectContaining({ mode: 'error', rate: 0.2 })]);
    const cleared = await fapiao('simulator', 'fault', 'clear', '--url', one.url);
    expect(cleared.stdout).toContain('no faults');
    expect((await admin(one.url, 'GET', '/admin/faults')).faults).toEqual([]);
  });

  it('sets a seller\'s terms: credit line and contingency limits per kind', async () => {
    const seller = validUscc(77_005_678);
    const set = await fapiao('simulator', 'terms', '--seller', seller, '--normal-hours', '2', '--special-amount-fen', '100000', '--monthly-credit-fen', '5000000', '--url', two.url, '--json');
    expect(set.code).toBe(0);
    const expected = {
      monthly_credit_fen: '5000000',
      contingency: [{ kind: 'normal', max_offline_hours: 2, max_offline_amount_fen: '100000000' }, { kind: 'special', max_offline_hours: 24, max_offline_amount_fen: '100000' }],
    };
    expect(JSON.parse(set.stdout)).toMatchObject(expected);
    expect(await admin(one.url, 'GET', `/admin/terms/${seller}`)).toMatchObject(expected);
  });

  it('says when the sandbox is not there (4001)', async () => {
    const gone = await fapiao('simulator', 'fault', 'show', '--url', 'http://127.0.0.1:9/sandbox', '--json');
    expect(gone.code).toBe(2);
    expect(JSON.parse(gone.stdout).error.code).toBe(4001);
  });

  it('fapiao reconcile: refuses a bad date (1050) before touching anything, and reconciles against FAPIAO_UPSTREAM_URL', async () => {
    const env = { FAPIAO_DATA_DIR: join(dataDir, 'fapiao'), FAPIAO_UPSTREAM_URL: one.url };
    const bad = await fapiaoWith(env, 'reconcile', '--date', '2026-02-30', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: 1050, details: [{ field: 'date' }] });
    const added = await fapiaoWith(env, 'merchant', 'add', '--name', '对账商户', '--tax-id', validUscc(77_001_234), '--region', '35', '--json');
    expect(added.code).toBe(0);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const ran = await fapiaoWith(env, 'reconcile', '--date', today, '--json');
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ ok: true, reconciliations: [{ report: { date: today, local_count: 0, differences: 0 }, items: [] }] });
  }, 60_000);

  it('two processes on one file grant blocks that never overlap and accept each invoice once; SIGKILL loses nothing acknowledged', async () => {
    const key = await enroll(one.url, SELLER);
    const client = (url: string) => createTaxServiceClient({ baseUrl: url, credentials: staticCredentials({ [SELLER]: key }), timeoutMs: 10_000, failureThreshold: 1000 });
    const [a, b] = [client(one.url), client(two.url)];
    const blocks: NumberBlock[] = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).allocateBlock(SELLER, 2026, 25)));
    const sorted = blocks.sort((x, y) => x.first - y.first);
    sorted.forEach((block, i) => expect(block.first).toBe(i * 25 + 1));
    expect(await b.allocateBlock(SELLER, 2026, 25, 'same-request')).toEqual(await a.allocateBlock(SELLER, 2026, 25, 'same-request'));

    const records: UploadRecord[] = Array.from({ length: 50 }, (_, i) => {
      const content = `invoice ${i}`;
      return { number: `26350000000${String(i).padStart(9, '0')}`, kind: 'normal', issuedAt: '2026-11-21T10:00:00.000+08:00', buyerTaxId: '', totalAmountFen: '100', totalTaxFen: '6', digest: createHash('sha256').update(content).digest('hex'), content };
    });
    const sent = records.map(encodeUploadRecord);
    const answers = await Promise.all([a.upload(SELLER, sent), b.upload(SELLER, sent), a.upload(SELLER, sent.slice(25)), b.upload(SELLER, sent.slice(0, 25))]);
    const accepted = answers.flatMap((x) => x.outcomes).filter((o) => o.result === 'accepted').map((o) => o.number);
    expect(accepted.sort()).toEqual(records.map((r) => r.number).sort());

    const counted = await fapiao('simulator', 'uploads', '--seller', SELLER, '--url', two.url, '--json');
    const { items, totals } = JSON.parse(counted.stdout);
    expect(totals).toMatchObject({ numbers: 50, submissions: 150, accepted: 50, duplicates: 100, conflicts: 0 });
    expect(items.every((i: { accepted: number; digest: string }) => i.accepted === 1 && /^[0-9a-f]{64}$/.test(i.digest))).toBe(true);

    // Both killed outright: what they acknowledged is on disk, and numbering goes on after the last block.
    for (const s of [one, two]) s.child.kill('SIGKILL');
    await Promise.all([one, two].map((s) => new Promise((resolve) => (s.child.exitCode !== null || s.child.signalCode !== null ? resolve(null) : s.child.once('exit', resolve)))));
    one = await startSimulator();
    const revived = client(one.url);
    for (const r of [records[0]!, records.at(-1)!]) expect(await revived.status(SELLER, r.number)).toMatchObject({ known: true, digest: r.digest, state: 'accepted' });
    const top = Math.max(...blocks.map((b) => b.last), 0);
    expect((await revived.allocateBlock(SELLER, 2026, 1)).first).toBeGreaterThan(top);
  }, 60_000);
});
