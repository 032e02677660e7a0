// `npm run bench:issue [-- --db sqlite|postgres] [--instances N] [--merchants M] [--route R] [--rate R] [--profile]`:
// invoices per second through the real server, against what the disk allows.
//
// One merchant by default: all its issues are serialised on its own row lock, numbering and chain
// (the hardest case). --merchants M spreads the clients over M merchants, as a platform's load is.
// With several instances, clients go to them round-robin (--route round-robin, the default: every
// merchant's batches meet on its lock from every instance), or --route merchant sends each
// merchant to one instance, as a load balancer hashing the API key would (docs/deploy.md).
//
// SQLite (the default): the ceiling is measured in the same run: single-row insert transactions per
// second on a fresh SQLite file with the server's settings (WAL, synchronous=FULL), so each one waits
// for an fsync. Then the server runs as a child process (one process per core) and closed-loop
// clients issue 3-line invoices at several concurrency levels, each request with its own
// Idempotency-Key as a POS system would send; then an open-loop client paces requests at half the
// peak rate, and latency is measured from each request's scheduled start (so a stalled server
// cannot hide its queue). For each level the report also gives the SQLite group commits of every
// server process (from /metrics): per commit, the wait for the write lock, the time it was held and
// the wait for the sync. --rate R paces it at R/s instead, so that two versions whose peaks differ
// are compared at the same load (the target still speaks of half the peak).
//
// Both databases: the report gives the CPU each invoice cost at each level (server processes,
// database, sandbox, client: CPU time ÷ invoices issued) and, measured in the same run once the
// servers have stopped, a floor: the same client and requests against a bare HTTP server that does
// no invoicing (bench/support/bare-http-server.ts). Next to the target it says how much CPU the
// machine has per invoice at the target rate and how much of it the bare exchange already takes.
//
// PostgreSQL (--db postgres, --instances 1|3): a fresh database per run (dropped at the end). The
// ceiling is pgbench running a one-row insert transaction against a scratch table in that database
// (full durability: synchronous_commit on) for 5 s at each client count; then N server instances
// (separate processes on separate ports, FAPIAO_WORKERS=1 each) share the database and the clients
// are spread over them round-robin; the same levels and open loop follow, and the share of time the
// database's backends spend in each wait event is sampled while loaded.
//
// The tax service is the standalone sandbox (`fapiao simulator`) in a process of its own, as a real
// one would be another machine: uploads flow during the run as they would in a shop, and the
// sandbox's CPU is reported apart from the server's (FAPIAO_UPSTREAM_URL, if set, is used instead).
//
// Targets are reported as PASS/FAIL but never change the exit code. If the throughput target is
// missed (or with --profile), a second server runs under --cpu-prof and the report says where its
// CPU went.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { cpuSeconds } from './support/cpu.js';
import { withPostgres } from './support/postgres.js';
import { validUscc } from '../test/support/http.js';
import { Issuer } from './support/issuer.js';
import { commitTotals, perCommit, scrapeMetrics } from './support/commit-metrics.js';
import { startSimulator, type Simulator } from './support/simulator.js';
import {
  freePort, peakRssKiB, repoRoot, runCli, sleep, startServer, tempDataDir, threeLineInvoice, SELLER_TAX_ID, type ServerProcess,
} from '../test/support/server-process.js';

const CEILING_MS = 3_000;
const WARMUP_MS = 3_000;
const RAMP_MS = 1_000;
const LEVEL_MS = 8_000;
const LEVELS = [16, 64, 128];
const PROFILE_MS = 5_000;
const PROFILE_CLIENTS = 64;
const TARGET_RATIO = 0.7;
const TARGET_RATIO_POSTGRES = 0.5; // with 3 instances
const TARGET_P99_MS = 50;
const PGBENCH_SECONDS = 5;
const FLOOR_MS = 5_000;
const WAIT_SAMPLE_MS = 50;
const serverEnv = { FAPIAO_RATE_LIMIT_PER_KEY: '100000000', LOG_LEVEL: 'warn', FAPIAO_NUMBER_RESERVE_MIN: '1000000' };
// Numbers come in blocks from the (sandbox) tax service: the merchant made for the run (`fapiao merchant
// add`, which reads this too) starts with enough for everything the run issues.
process.env.FAPIAO_NUMBER_RESERVE_MIN ??= serverEnv.FAPIAO_NUMBER_RESERVE_MIN;
const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

interface LevelResult {
  clients: number;
  invoicesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  ratioToCeiling: number;
  serverCpuPercent: number;
  /** The sandbox tax service taking the uploads (NaN when FAPIAO_UPSTREAM_URL names another). */
  sandboxCpuPercent: number;
  clientCpuPercent: number;
  /** SQLite only: the group commits of every server process while the level ran (whole level, ramp included). */
  commits?: ReturnType<typeof perCommit>;
}

/** What a PostgreSQL level adds: the pgbench ceiling at the same client count, database CPU, waits. */
interface PostgresLevel {
  clients: number;
  ceilingTps: number;
  pgbenchClients: number;
  databaseCpuPercent: number | null;
  waits: WaitShare[];
}

interface WaitShare {
  wait: string;
  /** Average number of the bench database's backends in this state at a sample. */
  backends: number;
  percent: number;
}

interface PacedResult {
  targetPerSecond: number;
  achievedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
}

// ---------------------------------------------------------------------------------------------
// The ceiling: one fsync'd transaction per row.

function measureCeiling(dir: string): number {
  const file = join(dir, 'ceiling.db');
  const db = new SQLite(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('create table t (id integer primary key, at integer not null, note text not null)');
    const insert = db.prepare('insert into t (at, note) values (?, ?)');
    const started = performance.now();
    let rows = 0;
    while (performance.now() - started < CEILING_MS) {
      insert.run(Date.now(), 'row'); // autocommit: each statement is its own transaction
      rows += 1;
    }
    return rows / ((performance.now() - started) / 1000);
  } finally {
    db.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The floor: the same client and requests against a server that does no invoicing at all
// (bench/support/bare-http-server.ts), answering with the bytes of a real issue answer. Its CPU per
// exchange is spent by any server on this machine before it issues anything.

interface Floor {
  clients: number;
  exchangesPerSecond: number;
  /** CPU microseconds per exchange, server processes and this client. */
  serverCpuUs: number;
  clientCpuUs: number;
  answerBytes: number;
}

/** CPU microseconds per invoice from a share of one core (100 = a whole core) and a rate. */
const cpuUsEach = (percent: number, perSecond: number) => (percent * 1e4) / perSecond;

interface BareServer {
  port: number;
  pid: number;
  /** Stops it and resolves once it has exited. */
  stop(): Promise<void>;
}

async function startBareServer(dir: string, answer: Buffer): Promise<BareServer> {
  const answerFile = join(dir, 'floor-answer.json');
  writeFileSync(answerFile, answer);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'support', 'bare-http-server.ts'), String(port), answerFile], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', () => resolveExit());
    child.once('error', () => resolveExit()); // never started: there is nothing to wait for
  });
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error('the bare HTTP server was not ready after 20 s')), 20_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('ready')) return;
        clearTimeout(timer);
        resolveReady();
      });
      child.once('error', fail);
      child.once('exit', (code, signal) => fail(new Error(`the bare HTTP server exited (${signal ?? code}) before it was ready`)));
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, pid: child.pid!, stop };
}

async function measureFloor(bare: BareServer, answerBytes: number, clients: number): Promise<Floor> {
  const issuer = new Issuer(bare.port, 'none', `floor-${Date.now()}`, clients);
  try {
    await closedLoop([issuer], clients, 0, WARMUP_MS, [bare.pid]);
    const r = await closedLoop([issuer], clients, RAMP_MS, FLOOR_MS, [bare.pid]);
    if (r.errors > 0) throw new Error(`the bare HTTP server failed ${r.errors} requests`);
    return { clients, exchangesPerSecond: r.perSecond, serverCpuUs: cpuUsEach(r.cpuPercent, r.perSecond), clientCpuUs: cpuUsEach(r.clientCpuPercent, r.perSecond), answerBytes };
  } finally {
    issuer.close();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a database of the run's own, pgbench as the ceiling, and what the backends wait for.

interface BenchDatabase {
  name: string;
  url: string;
  version: string;
  /** The postmaster, whose process tree is PostgreSQL's CPU, when the server runs on this machine. */
  cpuPid: number | undefined;
  drop(): Promise<void>;
}

async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `fapiao_bench_${randomBytes(4).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const { cpuPid, version } = await withPostgres(adminUrl, async (client) => {
    await client.query(`create database ${name}`);
    const { rows } = await client.query<{ pid: number; version: string }>(`select pg_backend_pid() as pid, current_setting('server_version') as version`);
    // The postmaster is the parent of our backend; it is only ours to measure if it runs on this machine.
    let postmaster: number | undefined;
    try {
      const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
      postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]); // field 4: ppid
    } catch {
      postmaster = undefined;
    }
    return { cpuPid: postmaster, version: rows[0]!.version };
  });
  return {
    name, url: url.toString(), version, cpuPid,
    drop: () => withPostgres(adminUrl, async (client) => void (await client.query(`drop database if exists ${name} with (force)`))),
  };
}

/** Connections pgbench may open now: what the server allows, less what others already hold. */
async function connectionsAvailable(url: string): Promise<number> {
  return withPostgres(url, async (client) => {
    const { rows } = await client.query<{ max: number; used: number }>(
      `select current_setting('max_connections')::int as max, (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used`,
    );
    return rows[0]!.max - rows[0]!.used - 2;
  });
}

function pgbenchPath(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter)];
  if (existsSync('/usr/lib/postgresql')) for (const version of readdirSync('/usr/lib/postgresql').sort().reverse()) dirs.push(`/usr/lib/postgresql/${version}/bin`);
  return dirs.map((dir) => join(dir, 'pgbench')).find((file) => existsSync(file)) ?? 'pgbench';
}

/** pgbench, one-row insert transactions for PGBENCH_SECONDS at each client count: tps per count. */
async function measurePostgresCeiling(database: BenchDatabase, dir: string, levels: number[]): Promise<Map<number, { tps: number; clients: number }>> {
  await withPostgres(database.url, (client) =>
    client.query('create table bench_ceiling (id bigserial primary key, at timestamptz not null default now(), note text not null)'),
  );
  const script = join(dir, 'ceiling.sql');
  writeFileSync(script, "insert into bench_ceiling (note) values ('row');\n");
  const url = new URL(database.url);
  const env = { ...process.env, ...(url.password && { PGPASSWORD: decodeURIComponent(url.password) }) };
  const available = await connectionsAvailable(database.url);
  const results = new Map<number, { tps: number; clients: number }>();
  try {
    for (const level of levels) {
      const clients = Math.min(level, available);
      const args = [
        '-h', url.hostname || '127.0.0.1', '-p', url.port || '5432', '-U', decodeURIComponent(url.username) || 'postgres',
        '-n', '-f', script, '-c', String(clients), '-j', '2', '-T', String(PGBENCH_SECONDS), database.name,
      ];
      const output = await new Promise<string>((resolve, reject) =>
        execFile(pgbenchPath(), args, { env }, (error, stdout, stderr) => (error ? reject(new Error(`pgbench failed: ${stderr || error.message}`)) : resolve(stdout))),
      );
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1];
      if (!tps) throw new Error(`no tps in pgbench's output:\n${output}`);
      results.set(level, { tps: Number(tps), clients });
    }
  } finally {
    await withPostgres(database.url, (client) => client.query('drop table bench_ceiling'));
  }
  return results;
}

/** Samples pg_stat_activity for the bench database from `delayMs` on until stopped: what its backends are doing. */
function sampleWaits(database: BenchDatabase, delayMs: number): { stop(): Promise<WaitShare[]> } {
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const client = new pg.Client({ connectionString: database.url });
  const loop = (async () => {
    await client.connect();
    await sleep(delayMs);
    while (running) {
      const { rows } = await client.query<{ wait: string; n: number }>(
        `select case when state = 'idle in transaction' then 'idle in transaction (waiting for the server process)'
                     when wait_event is null then 'running (CPU)'
                     else wait_event_type || ':' || wait_event end as wait, count(*)::int as n
           from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
            and state in ('active', 'idle in transaction')
          group by 1`,
      );
      samples += 1;
      for (const row of rows) counts.set(row.wait, (counts.get(row.wait) ?? 0) + row.n);
      await sleep(WAIT_SAMPLE_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop.catch(() => undefined);
      await client.end().catch(() => undefined);
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      return [...counts]
        .sort((a, b) => b[1] - a[1])
        .map(([wait, n]) => ({ wait, backends: n / Math.max(1, samples), percent: (100 * n) / Math.max(1, total) }));
    },
  };
}

/**
 * `count` merchants, each with a clerk API key, in the database `env` names (SQLite when it names
 * none), made with the CLI as an operator would. The first is SELLER_TAX_ID; the others have tax IDs
 * of their own, so each has its own numbers, chain and row lock.
 */
async function createMerchantsAndKeys(dataDir: string, env: NodeJS.ProcessEnv, count: number): Promise<Array<{ merchantId: string; apiKey: string }>> {
  const cli = async <T>(args: string[]): Promise<T> => {
    const result = await runCli(dataDir, [...args, '--json'], env);
    if (result.code !== 0) throw new Error(`fapiao ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  };
  const made: Array<{ merchantId: string; apiKey: string }> = [];
  for (let i = 0; i < count; i++) {
    const taxId = i === 0 ? SELLER_TAX_ID : validUscc(35_000_000 + i * 7, '350100');
    const merchant = await cli<{ id: string }>(['merchant', 'add', '--name', `福州测试商贸有限公司${i === 0 ? '' : `（${i}）`}`, '--tax-id', taxId, '--region', '35']);
    const created = await cli<{ key: string }>(['apikey', 'create', '--merchant', merchant.id, '--role', 'clerk']);
    made.push({ merchantId: merchant.id, apiKey: created.key });
  }
  return made;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Closed loop: `clients` requests always in flight, client i sending to instance i mod N; counts
 * what completes inside the window. `databasePid`, when given, is measured like the servers.
 */
async function closedLoop(issuers: Issuer[], clients: number, rampMs: number, windowMs: number, serverPids: number[], databasePid?: number, sandboxPid?: number) {
  const windowStart = performance.now() + rampMs;
  const windowEnd = windowStart + windowMs;
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let cpuAtStart = NaN;
  let databaseCpuAtStart = NaN;
  let sandboxCpuAtStart = NaN;
  let clientCpuAtStart = process.cpuUsage();
  const startCpu = setTimeout(() => {
    cpuAtStart = cpuSeconds(serverPids);
    if (databasePid !== undefined) databaseCpuAtStart = cpuSeconds([databasePid]);
    if (sandboxPid !== undefined) sandboxCpuAtStart = cpuSeconds([sandboxPid]);
    clientCpuAtStart = process.cpuUsage();
  }, rampMs);
  const worker = async (_: unknown, i: number) => {
    const issuer = issuers[i % issuers.length]!;
    while (performance.now() < windowEnd) {
      const started = performance.now();
      const status = await issuer.issue();
      const ended = performance.now();
      if (started < windowStart || ended > windowEnd) continue;
      if (status === 201) {
        ok += 1;
        latencies.push(ended - started);
      } else errors += 1;
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  clearTimeout(startCpu);
  const cpu = cpuSeconds(serverPids) - cpuAtStart;
  const databaseCpu = databasePid === undefined ? NaN : cpuSeconds([databasePid]) - databaseCpuAtStart;
  const sandboxCpu = sandboxPid === undefined ? NaN : cpuSeconds([sandboxPid]) - sandboxCpuAtStart;
  const clientCpu = process.cpuUsage(clientCpuAtStart);
  const clientCpuPercent = ((clientCpu.user + clientCpu.system) / 1e6 / (windowMs / 1000)) * 100;
  const sorted = Float64Array.from(latencies).sort();
  return {
    perSecond: ok / (windowMs / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors,
    cpuPercent: (cpu / (windowMs / 1000)) * 100, databaseCpuPercent: (databaseCpu / (windowMs / 1000)) * 100,
    sandboxCpuPercent: (sandboxCpu / (windowMs / 1000)) * 100, clientCpuPercent,
  };
}

/** Open loop: requests start on a fixed schedule whether or not earlier ones have answered (request k to instance k mod N). */
async function pacedLoop(issuers: Issuer[], perSecond: number, windowMs: number): Promise<PacedResult> {
  const total = Math.floor((perSecond * windowMs) / 1000);
  // Nothing per request outlives its answer: a client whose heap grows through the window pauses to
  // collect it, and each pause (10–31 ms seen, when every request's promise was kept to the end)
  // counts as the server's latency for every request scheduled during it.
  const latencies = new Float64Array(total);
  let answered = 0;
  let ok = 0;
  let allAnswered!: () => void;
  const done = new Promise<void>((resolve) => (allAnswered = resolve));
  if (total === 0) allAnswered();
  const interval = 1000 / perSecond;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + sent * interval;
      void issuers[sent % issuers.length]!.issue().then((status) => {
        if (status === 201) latencies[ok++] = performance.now() - scheduled;
        if (++answered === total) allAnswered();
      });
    }
    await sleep(1);
  }
  await done;
  const elapsed = performance.now() - start;
  const sorted = latencies.subarray(0, ok).sort();
  return {
    targetPerSecond: perSecond, achievedPerSecond: ok / (elapsed / 1000),
    p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN, errors: total - ok,
  };
}

// ---------------------------------------------------------------------------------------------
// Where the server's CPU goes: a V8 CPU profile folded into self and inclusive time per function.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface ProfileSummary {
  seconds: number;
  invoicesPerSecond: number;
  byArea: Array<{ area: string; percent: number }>;
  topSelf: Array<{ fn: string; percent: number }>;
  topInclusiveOwnCode: Array<{ fn: string; percent: number }>;
}

function where(url: string): string {
  if (url === '') return '';
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules >= 0) return path.slice(modules + 'node_modules/'.length).replace(/\/dist\/(esm|cjs)\//, '/…/');
  if (path.startsWith('node:')) return path;
  const place = path.startsWith('/') ? relative(repoRoot, path) : path;
  // The server runs compiled (dist/, see bin/fapiao.mjs): name its functions by their source file.
  return place.startsWith('dist/') ? `src/${place.slice('dist/'.length).replace(/\.js$/, '.ts')}` : place;
}

function area(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : 'native (V8 builtins, C++ addons)';
  const place = where(url);
  if (place.startsWith('node:')) return 'node core (http, net, streams)';
  if (place.startsWith('src/')) return `src/${place.split('/')[1]}`;
  const parts = place.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Folds the samples taken in the last `windowMs` before `tailMs` from the end of the profile. */
function summariseProfile(file: string, invoicesPerSecond: number, windowMs: number, tailMs: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // Start-up (module loading, migrations) is in the profile too; keep only the loaded window.
  const to = profile.endTime - tailMs * 1000;
  const from = to - windowMs * 1000;
  const hitsById = new Map<number, number>();
  let t = profile.startTime;
  let totalHits = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from || t > to) return;
    hitsById.set(id, (hitsById.get(id) ?? 0) + 1);
    totalHits += 1;
  });
  const label = (n: ProfileNode) => {
    const place = where(n.callFrame.url);
    const line = place.startsWith('src/') ? '' : `:${n.callFrame.lineNumber + 1}`; // tsx output lines, not the source's
    return `${n.callFrame.functionName || '(anonymous)'}${place ? ` ${place}${line}` : ''}`;
  };
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [nodeId, hits] of hitsById) {
    const node = byId.get(nodeId)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + hits);
    const a = area(node.callFrame.url, node.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + hits);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (!where(frame.callFrame.url).startsWith('src/')) continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + hits);
    }
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m].sort((x, y) => y[1] - x[1]).slice(0, n).map(([k, v]) => ({ key: k, percent: (100 * v) / Math.max(1, totalHits) }));
  return {
    seconds: (to - from) / 1e6,
    invoicesPerSecond,
    byArea: top(areas, 14).map(({ key, percent }) => ({ area: key, percent })),
    topSelf: top(self, 20).map(({ key, percent }) => ({ fn: key, percent })),
    topInclusiveOwnCode: top(inclusive, 15).map(({ key, percent }) => ({ fn: key, percent })),
  };
}

async function profileServer(dataDir: string, apiKeys: string[], databaseEnv: NodeJS.ProcessEnv = {}): Promise<ProfileSummary> {
  const profileDir = join(dataDir, 'cpu-profile');
  mkdirSync(profileDir, { recursive: true });
  const port = await freePort();
  // One process, so the profile holds all the work of a request (a cluster's primary only hands out connections).
  const server = await startServer({ dataDir, port, env: { ...serverEnv, ...databaseEnv, FAPIAO_WORKERS: '1' }, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=500'] });
  // The same merchants as the measured run, so the profile's batches are the size they were there.
  const issuers = apiKeys.map((apiKey, i) => new Issuer(port, apiKey, `prof${Date.now()}-${i}`, Math.ceil(PROFILE_CLIENTS / apiKeys.length)));
  try {
    const run = await closedLoop(issuers, PROFILE_CLIENTS, RAMP_MS, PROFILE_MS, [server.pid]);
    const loadEnded = performance.now();
    for (const issuer of issuers) issuer.close();
    await server.kill('SIGTERM'); // a clean exit writes the profile
    const tailMs = performance.now() - loadEnded;
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader hooks run in another).
    const file = readdirSync(profileDir).find((f) => /\.0\.\d+\.cpuprofile$/.test(f));
    if (!file) throw new Error('the server wrote no CPU profile');
    return summariseProfile(join(profileDir, file), run.perSecond, PROFILE_MS, tailMs);
  } finally {
    for (const issuer of issuers) issuer.close();
    await server.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pad = (text: string, width: number) => text.padStart(width);
const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

interface Options {
  db: 'sqlite' | 'postgres';
  /** Undefined: SQLite's usual single server with one process per core. */
  instances: number | undefined;
  profile: boolean;
  merchants: number;
  /** How clients pick an instance: in turn, or always their merchant's. */
  route: 'round-robin' | 'merchant';
  /** The open loop's rate when fixed by --rate; otherwise half the peak. */
  rate: number | undefined;
  postgresUrl: string;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite' },
      instances: { type: 'string' },
      profile: { type: 'boolean', default: false },
      merchants: { type: 'string', default: '1' },
      route: { type: 'string', default: 'round-robin' },
      rate: { type: 'string' },
      'postgres-url': { type: 'string', default: process.env.BENCH_POSTGRES_URL ?? DEFAULT_POSTGRES_URL },
    },
  });
  if (values.db !== 'sqlite' && values.db !== 'postgres') throw new Error(`--db is sqlite or postgres, not "${values.db}"`);
  const instances = values.instances === undefined ? undefined : Number(values.instances);
  if (instances !== undefined && !(Number.isInteger(instances) && instances >= 1 && instances <= 16)) throw new Error(`--instances is a whole number from 1 to 16, not "${values.instances}"`);
  const merchants = Number(values.merchants);
  if (!(Number.isInteger(merchants) && merchants >= 1 && merchants <= 256)) throw new Error(`--merchants is a whole number from 1 to 256, not "${values.merchants}"`);
  if (values.route !== 'round-robin' && values.route !== 'merchant') throw new Error(`--route is round-robin or merchant, not "${values.route}"`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1)) throw new Error(`--rate is a whole number of invoices per second, not "${values.rate}"`);
  return { db: values.db, instances, merchants, route: values.route, rate, profile: values.profile ?? false, postgresUrl: values['postgres-url']! };
}

async function main(): Promise<void> {
  const options = readOptions();
  const postgres = options.db === 'postgres';
  const instanceCount = options.instances ?? 1;
  const dir = tempDataDir('fapiao-bench-');
  const servers: ServerProcess[] = [];
  let issuers: Issuer[] = [];
  let database: BenchDatabase | undefined;
  let simulator: Simulator | undefined;
  let bare: BareServer | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaned ??= (async () => {
      for (const issuer of issuers) issuer.close();
      await Promise.all([...servers.map((server) => server.kill('SIGKILL')), bare?.stop()]);
      await database?.drop().catch((error: Error) => process.stderr.write(`could not drop ${database?.name}: ${error.message}\n`));
      simulator?.stop();
      dir.remove();
    })());
  process.once('SIGINT', () => void cleanUp().finally(() => process.exit(130)));
  try {
    let sqliteCeiling = NaN;
    let postgresCeiling: Map<number, { tps: number; clients: number }> | undefined;
    if (postgres) {
      database = await createBenchDatabase(options.postgresUrl);
      process.stdout.write(`measuring the ceiling (pgbench, ${PGBENCH_SECONDS} s of one-row insert transactions at ${LEVELS.join(', ')} clients)…\n`);
      postgresCeiling = await measurePostgresCeiling(database, dir.dataDir, LEVELS);
    } else {
      process.stdout.write(`measuring the ceiling (${CEILING_MS / 1000} s of single-row transactions)…\n`);
      sqliteCeiling = measureCeiling(dir.dataDir);
    }
    const ceilingAt = (clients: number) => postgresCeiling?.get(clients)?.tps ?? sqliteCeiling;

    if (!process.env.FAPIAO_UPSTREAM_URL) {
      simulator = await startSimulator();
      process.env.FAPIAO_UPSTREAM_URL = simulator.url; // for the CLI that makes the merchant and for every server
    }
    const databaseEnv: NodeJS.ProcessEnv = database ? { DATABASE_URL: database.url } : {};
    const merchants = await createMerchantsAndKeys(dir.dataDir, databaseEnv, options.merchants);
    // SQLite by default: one server with a process per core. Otherwise N instances of one process each.
    const instanceEnv = options.instances === undefined && !postgres ? serverEnv : { ...serverEnv, ...databaseEnv, FAPIAO_WORKERS: '1' };
    for (let i = 0; i < instanceCount; i++) {
      const port = await freePort();
      servers.push(await startServer({ dataDir: dir.dataDir, port, env: instanceEnv }));
    }
    const pids = servers.map((server) => server.pid);
    const stamp = Date.now();
    // Round-robin: client i goes to server i mod S for merchant i mod M (every pair, when S and M
    // share no factor). By merchant: merchant m's clients all go to server m mod S.
    const pairs = options.route === 'merchant' ? merchants.length : servers.length * merchants.length;
    const serverOf = (i: number) => servers[(options.route === 'merchant' ? i % merchants.length : i) % servers.length]!;
    issuers = Array.from({ length: pairs }, (_, i) =>
      new Issuer(serverOf(i).port, merchants[i % merchants.length]!.apiKey, `b${stamp}-${i}`, Math.ceil(Math.max(...LEVELS) / pairs)));

    // One real answer, which the floor's bare server sends back for every request.
    const sample = await fetch(`${servers[0]!.baseUrl}/api/v1/invoices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${merchants[0]!.apiKey}`, 'idempotency-key': `b${stamp}-sample` },
      body: JSON.stringify(threeLineInvoice('bench')),
    });
    const sampleAnswer = Buffer.from(await sample.arrayBuffer());
    if (sample.status !== 201) throw new Error(`an issue answered ${sample.status}: ${sampleAnswer.toString('utf8').slice(0, 200)}`);

    process.stdout.write(`warming up (${WARMUP_MS / 1000} s)…\n`);
    await closedLoop(issuers, 16, 0, WARMUP_MS, pids);

    const levels: LevelResult[] = [];
    const postgresLevels: PostgresLevel[] = [];
    for (const clients of LEVELS) {
      process.stdout.write(`${clients} clients for ${LEVEL_MS / 1000} s…\n`);
      const sampler = database && sampleWaits(database, RAMP_MS);
      const commitsBefore = postgres ? undefined : commitTotals(await scrapeMetrics(servers.map((server) => server.baseUrl)));
      const levelStarted = performance.now();
      const r = await closedLoop(issuers, clients, RAMP_MS, LEVEL_MS, pids, database?.cpuPid, simulator?.pid);
      const commits = commitsBefore && perCommit(commitsBefore, commitTotals(await scrapeMetrics(servers.map((server) => server.baseUrl))), (performance.now() - levelStarted) / 1000);
      const waits = await sampler?.stop();
      levels.push({ clients, invoicesPerSecond: r.perSecond, p50Ms: r.p50, p99Ms: r.p99, errors: r.errors, ratioToCeiling: r.perSecond / ceilingAt(clients), serverCpuPercent: r.cpuPercent, sandboxCpuPercent: r.sandboxCpuPercent, clientCpuPercent: r.clientCpuPercent, ...(commits && { commits }) });
      if (postgresCeiling) {
        const ceiling = postgresCeiling.get(clients)!;
        postgresLevels.push({ clients, ceilingTps: ceiling.tps, pgbenchClients: ceiling.clients, databaseCpuPercent: Number.isFinite(r.databaseCpuPercent) ? r.databaseCpuPercent : null, waits: waits ?? [] });
      }
    }
    const peak = levels.reduce((best, l) => (l.invoicesPerSecond > best.invoicesPerSecond ? l : best));

    const halfRate = Math.max(1, Math.round(peak.invoicesPerSecond / 2));
    const openLoopRate = options.rate ?? halfRate;
    process.stdout.write(`open loop at ${openLoopRate}/s for ${LEVEL_MS / 1000} s…\n`);
    const paced = await pacedLoop(issuers, openLoopRate, LEVEL_MS);
    const rssEach = servers.map((server) => peakRssKiB(server.pid));
    const peakRss = rssEach.some((kib) => kib === undefined) ? undefined : rssEach.reduce((a, b) => a! + b!, 0);
    for (const issuer of issuers) issuer.close();
    await Promise.all(servers.map((server) => server.kill('SIGTERM')));
    process.stdout.write(`the floor: the same client against a bare HTTP server (${peak.clients} clients, ${FLOOR_MS / 1000} s)…\n`);
    let floor: Floor | undefined;
    try {
      bare = await startBareServer(dir.dataDir, sampleAnswer);
      floor = await measureFloor(bare, sampleAnswer.length, peak.clients);
    } catch (error) {
      process.stderr.write(`the floor was not measured: ${(error as Error).message}\n`);
    } finally {
      await bare?.stop();
    }

    const targetRatio = postgres ? TARGET_RATIO_POSTGRES : TARGET_RATIO;
    const ceiling = ceilingAt(peak.clients);
    const throughputOk = peak.invoicesPerSecond >= targetRatio * ceiling;
    const latencyOk = options.rate === undefined && paced.p99Ms <= TARGET_P99_MS && paced.errors === 0;

    let profile: ProfileSummary | undefined;
    if (!throughputOk || options.profile) {
      process.stdout.write(`profiling a single-process server (--cpu-prof, ${PROFILE_CLIENTS} clients, ${PROFILE_MS / 1000} s)…\n`);
      profile = await profileServer(dir.dataDir, merchants.map((m) => m.apiKey), databaseEnv);
    }

    const machine = `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'})`;
    const routing = options.route === 'merchant' ? "each merchant's clients on one instance (--route merchant)" : 'clients spread over them round-robin';
    const lines = ['', `Fapiao issue benchmark — ${new Date().toISOString()}`];
    if (!database) {
      lines.push(
        `${machine}, data in ${dir.dataDir.split('/').slice(0, -1).join('/') || '/'}`,
        `3-line normal invoices, one Idempotency-Key each; client, server and sandbox tax service share the machine`,
      );
      if (options.instances !== undefined) lines.push(`${instanceCount} server instance(s) on one SQLite file (separate processes, FAPIAO_WORKERS=1 each); ${routing}`);
      lines.push(`${options.merchants} merchant(s); clients spread over them round-robin`);
      lines.push(
        '',
        `Ceiling: ${fixed(sqliteCeiling, 0)} single-row insert transactions/s (better-sqlite3, WAL, synchronous=FULL, ${CEILING_MS / 1000} s)`,
        '',
        ` clients  invoices/s   p50 ms   p99 ms  errors  ÷ ceiling  server CPU  sandbox CPU  client CPU`,
        ...levels.map((l) =>
          `${pad(String(l.clients), 8)}${pad(fixed(l.invoicesPerSecond, 0), 12)}${pad(fixed(l.p50Ms), 9)}${pad(fixed(l.p99Ms), 9)}${pad(String(l.errors), 8)}${pad(fixed(l.ratioToCeiling, 2), 11)}${pad(fixed(l.serverCpuPercent, 0) + ' %', 12)}${pad(fixed(l.sandboxCpuPercent, 0) + ' %', 13)}${pad(fixed(l.clientCpuPercent, 0) + ' %', 12)}`),
        '',
        'SQLite group commits of every server process, the background one included (fapiao_sqlite_commit_*), means per commit:',
        '  from asking for the write lock to holding it, statements and commit (about the time held), commit to its sync handled; units committed',
        ' clients  commits/s  lock wait ms  transaction ms  durable ms  units',
        ...levels.map(({ clients, commits: c }) =>
          `${pad(String(clients), 8)}${pad(fixed(c?.commitsPerSecond ?? NaN, 0), 11)}${pad(fixed(c?.lockWaitMs ?? NaN, 2), 14)}${pad(fixed(c?.transactionMs ?? NaN, 2), 16)}${pad(fixed(c?.durableMs ?? NaN, 2), 12)}${pad(fixed(c?.units ?? NaN), 7)}`),
      );
    } else {
      const capped = postgresLevels.filter((l) => l.pgbenchClients < l.clients);
      lines.push(
        `${machine}; PostgreSQL ${database.version} at ${new URL(database.url).host}, fresh database ${database.name} (dropped afterwards)`,
        `3-line normal invoices, one Idempotency-Key each; clients, servers, database and sandbox tax service share the machine`,
        `${instanceCount} server instance${instanceCount > 1 ? 's' : ''} (separate processes on separate ports, FAPIAO_WORKERS=1 each) on one database; ${routing}`,
        `${options.merchants} merchant(s); clients spread over them round-robin`,
        '',
        `Ceiling: pgbench, one-row insert transactions into a scratch table (synchronous_commit=on, -j 2, ${PGBENCH_SECONDS} s at each client count)`,
        ...capped.map((l) => `  pgbench at ${l.clients} clients was capped at ${l.pgbenchClients} connections (max_connections less those in use)`),
        '',
        ` clients  invoices/s   p50 ms   p99 ms  errors  pgbench tps  ÷ ceiling  servers CPU  postgres CPU  sandbox CPU  client CPU`,
        ...levels.map((l, i) => {
          const p = postgresLevels[i]!;
          return `${pad(String(l.clients), 8)}${pad(fixed(l.invoicesPerSecond, 0), 12)}${pad(fixed(l.p50Ms), 9)}${pad(fixed(l.p99Ms), 9)}${pad(String(l.errors), 8)}${pad(fixed(p.ceilingTps, 0), 13)}${pad(fixed(l.ratioToCeiling, 3), 11)}` +
            `${pad(fixed(l.serverCpuPercent, 0) + ' %', 13)}${pad(p.databaseCpuPercent === null ? '—' : fixed(p.databaseCpuPercent, 0) + ' %', 14)}${pad(fixed(l.sandboxCpuPercent, 0) + ' %', 13)}${pad(fixed(l.clientCpuPercent, 0) + ' %', 12)}`;
        }),
        '',
        `What the bench database's client backends were doing while loaded (sampled every ${WAIT_SAMPLE_MS} ms; average backends, share):`,
        ...postgresLevels.map((p) => `${pad(String(p.clients), 8)} clients: ${p.waits.slice(0, 5).map((w) => `${w.wait} ${fixed(w.backends)} (${fixed(w.percent, 0)} %)`).join(', ')}`),
      );
    }
    const ceilingText = database ? `pgbench ceiling at ${peak.clients} clients (${fixed(ceiling, 0)} tps)` : 'ceiling';
    const cpuEach = levels.map((l, i) => {
      const parts: Record<string, number> = {
        server: cpuUsEach(l.serverCpuPercent, l.invoicesPerSecond),
        ...(database && { postgres: cpuUsEach(postgresLevels[i]?.databaseCpuPercent ?? NaN, l.invoicesPerSecond) }),
        sandbox: cpuUsEach(l.sandboxCpuPercent, l.invoicesPerSecond),
        client: cpuUsEach(l.clientCpuPercent, l.invoicesPerSecond),
      };
      const measured = Object.values(parts).filter(Number.isFinite); // the sandbox's or the database's CPU is unknown when they run elsewhere
      return { clients: l.clients, parts, together: measured.reduce((a, b) => a + b, 0), partial: measured.length < Object.keys(parts).length };
    });
    const partNames = Object.keys(cpuEach[0]!.parts);
    const machineUs = (availableParallelism() * 1e6) / (targetRatio * ceiling);
    lines.push(
      '',
      `CPU per invoice, µs (CPU time ÷ invoices issued; the machine has ${fixed(availableParallelism() * 1e6, 0)} µs of CPU a second):`,
      ` clients${partNames.map((name) => pad(name, 10)).join('')}  together`,
      ...cpuEach.map((c) => `${pad(String(c.clients), 8)}${partNames.map((name) => pad(fixed(c.parts[name]!, 0), 10)).join('')}${pad(fixed(c.together, 0) + (c.partial ? '*' : ''), 10)}`),
      ...(cpuEach.some((c) => c.partial) ? ['  * without the parts marked —, which run elsewhere'] : []),
      floor
        ? `Floor: the same client and requests against a bare HTTP server (a process per core; it parses each body and answers ` +
          `a stored ${floor.answerBytes}-byte issue answer), ${floor.clients} clients: ${fixed(floor.exchangesPerSecond, 0)} exchanges/s, ` +
          `CPU per exchange ${fixed(floor.serverCpuUs, 0)} µs server + ${fixed(floor.clientCpuUs, 0)} µs client`
        : 'Floor: not measured (the error is above)',
      '',
      `Open loop at ${options.rate === undefined ? 'half the peak' : 'a rate fixed by --rate'} (${paced.targetPerSecond}/s for ${LEVEL_MS / 1000} s): achieved ${fixed(paced.achievedPerSecond, 0)}/s, ` +
        `p50 ${fixed(paced.p50Ms)} ms, p99 ${fixed(paced.p99Ms)} ms, max ${fixed(paced.maxMs)} ms, errors ${paced.errors}`,
      `Server peak RSS (VmHWM): ${peakRss === undefined ? 'unknown' : `${fixed(peakRss / 1024)} MiB`}${servers.length > 1 ? ` (${servers.length} instances together)` : ''}`,
      '',
      'Targets',
      `  throughput ≥ ${targetRatio} × ${database ? `pgbench ceiling${instanceCount === 3 ? '' : ' (the target is set for 3 instances)'}` : 'ceiling'}: ` +
        `peak ${fixed(peak.invoicesPerSecond, 0)}/s at ${peak.clients} clients = ${fixed(peak.ratioToCeiling, database ? 3 : 2)} × ${ceilingText}   ${verdict(throughputOk)}`,
      `    at the target (${fixed(targetRatio * ceiling, 0)}/s) the machine has ${fixed(machineUs, 0)} µs of CPU per invoice; ` +
        `the bare exchange takes ${floor ? fixed(floor.serverCpuUs + floor.clientCpuUs, 0) : '—'} µs of it, the peak level took ${fixed(cpuEach.find((c) => c.clients === peak.clients)!.together, 0)} µs`,
      `  p99 ≤ ${TARGET_P99_MS} ms at half the peak rate: ${fixed(paced.p99Ms)} ms${paced.errors ? ` (${paced.errors} errors)` : ''}` +
        (options.rate === undefined ? `   ${verdict(latencyOk)}` : ` at ${openLoopRate}/s (--rate), half the peak is ${halfRate}/s: no verdict`),
    );
    if (profile) {
      lines.push(
        '',
        `Server CPU profile, one process (${fixed(profile.seconds)} s, ${PROFILE_CLIENTS} clients, ${fixed(profile.invoicesPerSecond, 0)} invoices/s under the profiler)`,
        '  by area (self time):',
        ...profile.byArea.map((a) => `    ${pad(fixed(a.percent), 5)} %  ${a.area}`),
        '  top functions (self time):',
        ...profile.topSelf.map((f) => `    ${pad(fixed(f.percent), 5)} %  ${f.fn}`),
        '  our code, inclusive time:',
        ...profile.topInclusiveOwnCode.map((f) => `    ${pad(fixed(f.percent), 5)} %  ${f.fn}`),
      );
    }
    process.stdout.write(lines.join('\n') + '\n');

    const resultsDir = join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const variant = !postgres && options.instances === undefined ? '' : `${options.db}-${instanceCount}x-`;
    const out = join(resultsDir, `issue-${variant}${new Date().toISOString().slice(0, 10)}.json`);
    const report = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      ...(variant && { db: options.db, instances: instanceCount }),
      ...(database && { postgres: { version: database.version, ceiling: 'pgbench one-row insert transactions, synchronous_commit=on', levels: postgresLevels } }),
      ceilingTransactionsPerSecond: ceiling,
      levels,
      peak: { clients: peak.clients, invoicesPerSecond: peak.invoicesPerSecond, ratioToCeiling: peak.ratioToCeiling },
      ...(options.rate === undefined ? { halfPeakOpenLoop: paced } : { fixedRateOpenLoop: paced }),
      cpuPerInvoiceUs: cpuEach.map(({ clients, parts, together }) => ({ clients, together, parts })),
      floor: floor ?? null,
      machineCpuUsPerInvoiceAtTarget: machineUs,
      serverPeakRssKiB: peakRss ?? null,
      targets: {
        throughput: { wanted: `≥ ${targetRatio} × ceiling`, ratio: peak.ratioToCeiling, pass: throughputOk },
        p99AtHalfPeak: { wanted: `≤ ${TARGET_P99_MS} ms`, p99Ms: paced.p99Ms, pass: latencyOk },
      },
      profile: profile ?? null,
    };
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(`\nwritten to ${relative(repoRoot, out)}\n`);
  } finally {
    await cleanUp();
  }
}

await main();
