// The real server and CLI as child processes, for the crash test and the issue benchmark:
// a free port, a fresh data directory, a merchant and an API key made with the CLI, and a
// server that can be killed and started again on the same port and data.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(repoRoot, 'bin', 'fapiao.mjs');

/** A seller USCC with a valid check character (the demo merchant's). */
export const SELLER_TAX_ID = '91350100M000100Y43';

export function tempDataDir(prefix = 'fapiao-proc-'): { dataDir: string; remove(): void } {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  return { dataDir, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/** A port nobody listens on right now (the kernel picks it; we close and reuse the number). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolvePort(port) : reject(new Error('no port'))));
    });
  });
}

/** The data directory's SQLite file, even where the environment names a PostgreSQL database. */
const sqliteOnly = { DATABASE_URL: '' };

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fapiao <args>` against a data directory and waits for it to exit. */
export function runCli(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, ...sqliteOnly, ...env, FAPIAO_DATA_DIR: dataDir }, maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a `--json` command that must succeed and parses what it printed. */
export async function runCliJson<T>(dataDir: string, args: string[]): Promise<T> {
  const result = await runCli(dataDir, [...args, '--json']);
  if (result.code !== 0) throw new Error(`fapiao ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** A merchant and a clerk API key, created with the CLI before the server first starts. */
export async function createMerchantAndKey(dataDir: string, region = '35'): Promise<{ merchantId: string; apiKey: string }> {
  const merchant = await runCliJson<{ id: string }>(dataDir, ['merchant', 'add', '--name', '福州测试商贸有限公司', '--tax-id', SELLER_TAX_ID, '--region', region]);
  const created = await runCliJson<{ key: string }>(dataDir, ['apikey', 'create', '--merchant', merchant.id, '--role', 'clerk']);
  return { merchantId: merchant.id, apiKey: created.key };
}

/** Every invoice of a merchant as `fapiao query --json` prints it, paging with the cursor. */
export async function queryAllInvoices<T = Record<string, unknown>>(dataDir: string, merchantId: string): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  do {
    const args = ['query', '--merchant', merchantId, '--limit', '200', ...(cursor ? ['--cursor', cursor] : [])];
    const page: { items: T[]; next_cursor: string | null } = await runCliJson(dataDir, args);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly baseUrl: string;
  /** Everything the process wrote, for diagnosing a failed start. */
  output(): string;
  /** Resolves with the exit code or signal once the process has gone. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
  kill(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
}

export interface StartOptions {
  dataDir: string;
  port: number;
  env?: NodeJS.ProcessEnv;
  /** Extra node flags, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

/** Starts `fapiao serve` and resolves once /readyz answers 200. */
export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const server = spawnServer(options);
  const gone = server.exited.then((how) => {
    throw new Error(`the server exited (${how}) before it was ready:\n${server.output()}`);
  });
  gone.catch(() => undefined);
  await Promise.race([waitReady(server.baseUrl, options.readyTimeoutMs ?? 20_000), gone]);
  return server;
}

/** Starts `fapiao serve` without waiting for it to be ready: for a server expected to fail. */
export function spawnServer(options: StartOptions): ServerProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, 'serve'], {
    cwd: repoRoot,
    env: { ...process.env, ...sqliteOnly, LOG_LEVEL: 'warn', ...options.env, FAPIAO_DATA_DIR: options.dataDir, PORT: String(options.port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | NodeJS.Signals | null>((resolveExit) => child.once('exit', (code, signal) => resolveExit(signal ?? code)));
  if (child.pid === undefined) throw new Error('the server process did not start');
  return {
    child,
    pid: child.pid,
    port: options.port,
    baseUrl: `http://127.0.0.1:${options.port}`,
    output: () => output,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls /readyz until it answers 200 (the database takes writes) or the time is up. */
export async function waitReady(baseUrl: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(25);
  }
  throw new Error(`${baseUrl}/readyz not ready after ${timeoutMs} ms: ${last}`);
}

/** A process and all its descendants (the server's worker processes), from /proc. */
export function processTree(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [pid, ...children.flatMap(processTree)];
  } catch {
    return [];
  }
}

/**
 * The primary's own server processes (not, say, a compiler service tsx may have started), of one
 * role or all: `http` answers requests, `background` uploads and delivers.
 */
export function serverWorkers(primary: number, role?: 'http' | 'background'): number[] {
  return processTree(primary).filter((pid) => {
    if (pid === primary) return false;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('fapiao.mjs')) return false;
      if (role === undefined) return true;
      const background = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('FAPIAO_PROCESS_ROLE=background');
      return background === (role === 'background');
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Whether a process of this id exists (running, or a zombie nobody has waited for). */
export function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Peak resident set size of a live server in KiB (VmHWM summed over its processes), or undefined once it has gone. */
export function peakRssKiB(pid: number): number | undefined {
  let total: number | undefined;
  for (const member of processTree(pid)) {
    try {
      const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${member}/status`, 'utf8'));
      if (match) total = (total ?? 0) + Number(match[1]);
    } catch {
      // the process ended between listing and reading
    }
  }
  return total;
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** A valid ordinary invoice (普通发票) with three lines at three tax rates. */
export function threeLineInvoice(remarks = ''): Record<string, unknown> {
  return {
    kind: 'normal',
    remarks,
    buyer: { name: '厦门示例软件有限公司', tax_id: '', address: '厦门市思明区软件园二期', phone: '0592-5550000' },
    lines: [
      { name: '*信息技术服务*软件开发', tax_code: '3040201010000000000', unit: '项', quantity: '1', unit_price: '1000.00', tax_rate: '0.06' },
      { name: '*纸制品*复印纸', tax_code: '1060201010000000000', spec: 'A4 70g', unit: '包', quantity: '10', unit_price: '25.50', tax_rate: '0.13' },
      { name: '*现代服务*咨询服务', tax_code: '3040300000000000000', unit: '小时', quantity: '2', unit_price: '300', tax_rate: '0.06' },
    ],
  };
}

/** `runCliJson` with settings of its own, e.g. the DATABASE_URL of a PostgreSQL server under test. */
export async function runCliJsonWith<T>(dataDir: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const result = await runCli(dataDir, [...args, '--json'], env);
  if (result.code !== 0) throw new Error(`fapiao ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** `createMerchantAndKey` against the database `env` names. */
export async function createMerchantAndKeyWith(dataDir: string, env: NodeJS.ProcessEnv, region = '35'): Promise<{ merchantId: string; apiKey: string }> {
  const merchant = await runCliJsonWith<{ id: string }>(dataDir, ['merchant', 'add', '--name', '福州测试商贸有限公司', '--tax-id', SELLER_TAX_ID, '--region', region], env);
  const created = await runCliJsonWith<{ key: string }>(dataDir, ['apikey', 'create', '--merchant', merchant.id, '--role', 'clerk'], env);
  return { merchantId: merchant.id, apiKey: created.key };
}

/** `queryAllInvoices` against the database `env` names. */
export async function queryAllInvoicesWith<T = Record<string, unknown>>(dataDir: string, merchantId: string, env: NodeJS.ProcessEnv): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  do {
    const args = ['query', '--merchant', merchantId, '--limit', '200', ...(cursor ? ['--cursor', cursor] : [])];
    const page: { items: T[]; next_cursor: string | null } = await runCliJsonWith(dataDir, args, env);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

/** What one HTTP call came back with, or that none came back (`status` 0). */
export interface CallOutcome {
  status: number;
  /** The fault code of an error answer (`error.code`), if there was one. */
  code?: number;
  retryAfter: string | null;
  replayed: boolean;
  /** Parsed JSON body, when there was one. */
  body?: unknown;
  /** Why there was no answer (refused, reset, timed out). */
  failure?: string;
  startedAt: number;
  ms: number;
}

/** One POST /api/v1/invoices with an Idempotency-Key; never throws. */
export async function postInvoice(baseUrl: string, apiKey: string, key: string, body: string, timeoutMs = 15_000): Promise<CallOutcome> {
  const startedAt = Date.now();
  try {
    const response = await fetch(`${baseUrl}/api/v1/invoices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': key },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    const code = (parsed as { error?: { code?: number } } | null)?.error?.code;
    return {
      status: response.status, retryAfter: response.headers.get('retry-after'), replayed: response.headers.get('idempotent-replayed') === 'true',
      body: parsed, startedAt, ms: Date.now() - startedAt, ...(code !== undefined && { code }),
    };
  } catch (error) {
    return { status: 0, retryAfter: null, replayed: false, failure: (error as Error).message, startedAt, ms: Date.now() - startedAt };
  }
}

/** GET /readyz once; `status` 0 when nothing answered. */
export async function probeReady(baseUrl: string, timeoutMs = 10_000): Promise<CallOutcome> {
  const startedAt = Date.now();
  try {
    const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    const parsed = (await response.json().catch(() => undefined)) as { error?: { code?: number } } | undefined;
    const code = parsed?.error?.code;
    return { status: response.status, retryAfter: response.headers.get('retry-after'), replayed: false, body: parsed, startedAt, ms: Date.now() - startedAt, ...(code !== undefined && { code }) };
  } catch (error) {
    return { status: 0, retryAfter: null, replayed: false, failure: (error as Error).message, startedAt, ms: Date.now() - startedAt };
  }
}
