// `npm run bench:issue`: invoices per second through the real server, against what the disk allows.
//
// The ceiling is measured in the same run: single-row insert transactions per second on a fresh
// SQLite file with the server's settings (WAL, synchronous=FULL), so each one waits for an fsync.
// Then the server runs as a child process and closed-loop clients issue 3-line invoices at several
// concurrency levels, each request with its own Idempotency-Key as a POS system would send; then
// an open-loop client paces requests at half the peak rate, and latency is measured from each
// request's scheduled start (so a stalled server cannot hide its queue). Targets are reported as
// PASS/FAIL but never change the exit code. If the throughput target is missed (or with
// --profile), a second server runs under --cpu-prof and the report says where its CPU went.
import http from 'node:http';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, relative } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  createMerchantAndKey, freePort, peakRssKiB, processTree, repoRoot, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess,
} from '../test/support/server-process.js';

const CEILING_MS = 3_000;
const WARMUP_MS = 3_000;
const RAMP_MS = 1_000;
const LEVEL_MS = 8_000;
const LEVELS = [16, 64, 128];
const PROFILE_MS = 5_000;
const PROFILE_CLIENTS = 64;
const TARGET_RATIO = 0.7;
const TARGET_P99_MS = 50;
const serverEnv = { FAPIAO_RATE_LIMIT_PER_KEY: '100000000', LOG_LEVEL: 'warn' };

interface LevelResult {
  clients: number;
  invoicesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  ratioToCeiling: number;
  serverCpuPercent: number;
  clientCpuPercent: number;
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
// A light HTTP client: keep-alive sockets, the body serialised once, only the status looked at.

class Issuer {
  private readonly agent: http.Agent;
  private readonly body: Buffer;
  private sequence = 0;

  constructor(
    private readonly port: number,
    private readonly apiKey: string,
    private readonly runId: string,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.body = Buffer.from(JSON.stringify(threeLineInvoice('bench')));
  }

  /** Resolves with the HTTP status, or 0 when there was no answer. */
  issue(): Promise<number> {
    const key = `${this.runId}-${++this.sequence}`;
    return new Promise((resolve) => {
      const request = http.request(
        {
          agent: this.agent, host: '127.0.0.1', port: this.port, method: 'POST', path: '/api/v1/invoices',
          headers: { 'content-type': 'application/json', 'content-length': this.body.length, authorization: `Bearer ${this.apiKey}`, 'idempotency-key': key },
        },
        (response) => {
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(0));
          response.resume();
        },
      );
      request.on('error', () => resolve(0));
      request.end(this.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** CPU seconds the server (all its processes) has used so far (user + system), from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
    } catch {
      // the process ended between listing and reading
    }
  }
  return total;
}

/** Closed loop: `clients` requests always in flight; counts what completes inside the window. */
async function closedLoop(issuer: Issuer, clients: number, rampMs: number, windowMs: number, serverPid: number) {
  const windowStart = performance.now() + rampMs;
  const windowEnd = windowStart + windowMs;
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let cpuAtStart = NaN;
  let clientCpuAtStart = process.cpuUsage();
  const startCpu = setTimeout(() => {
    cpuAtStart = cpuSeconds(serverPid);
    clientCpuAtStart = process.cpuUsage();
  }, rampMs);
  const worker = async () => {
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
  const cpu = cpuSeconds(serverPid) - cpuAtStart;
  const clientCpu = process.cpuUsage(clientCpuAtStart);
  const clientCpuPercent = ((clientCpu.user + clientCpu.system) / 1e6 / (windowMs / 1000)) * 100;
  const sorted = Float64Array.from(latencies).sort();
  return { perSecond: ok / (windowMs / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors, cpuPercent: (cpu / (windowMs / 1000)) * 100, clientCpuPercent };
}

/** Open loop: requests start on a fixed schedule whether or not earlier ones have answered. */
async function pacedLoop(issuer: Issuer, perSecond: number, windowMs: number): Promise<PacedResult> {
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  let errors = 0;
  let ok = 0;
  const total = Math.floor((perSecond * windowMs) / 1000);
  const interval = 1000 / perSecond;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + sent * interval;
      inFlight.push(
        issuer.issue().then((status) => {
          if (status === 201) {
            ok += 1;
            latencies.push(performance.now() - scheduled);
          } else errors += 1;
        }),
      );
    }
    await sleep(1);
  }
  await Promise.all(inFlight);
  const elapsed = performance.now() - start;
  const sorted = Float64Array.from(latencies).sort();
  return {
    targetPerSecond: perSecond, achievedPerSecond: ok / (elapsed / 1000),
    p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN, errors,
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
  return path.startsWith('/') ? relative(repoRoot, path) : path;
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

async function profileServer(dataDir: string, apiKey: string): Promise<ProfileSummary> {
  const profileDir = join(dataDir, 'cpu-profile');
  mkdirSync(profileDir, { recursive: true });
  const port = await freePort();
  // One process, so the profile holds all the work of a request (a cluster's primary only hands out connections).
  const server = await startServer({ dataDir, port, env: { ...serverEnv, FAPIAO_WORKERS: '1' }, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=500'] });
  const issuer = new Issuer(port, apiKey, `prof${Date.now()}`, PROFILE_CLIENTS);
  try {
    const run = await closedLoop(issuer, PROFILE_CLIENTS, RAMP_MS, PROFILE_MS, server.pid);
    const loadEnded = performance.now();
    issuer.close();
    await server.kill('SIGTERM'); // a clean exit writes the profile
    const tailMs = performance.now() - loadEnded;
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader hooks run in another).
    const file = readdirSync(profileDir).find((f) => /\.0\.\d+\.cpuprofile$/.test(f));
    if (!file) throw new Error('the server wrote no CPU profile');
    return summariseProfile(join(profileDir, file), run.perSecond, PROFILE_MS, tailMs);
  } finally {
    issuer.close();
    await server.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pad = (text: string, width: number) => text.padStart(width);
const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

async function main(): Promise<void> {
  const forceProfile = process.argv.includes('--profile');
  const dir = tempDataDir('fapiao-bench-');
  let server: ServerProcess | undefined;
  let issuer: Issuer | undefined;
  try {
    process.stdout.write(`measuring the ceiling (${CEILING_MS / 1000} s of single-row transactions)…\n`);
    const ceiling = measureCeiling(dir.dataDir);

    const { apiKey } = await createMerchantAndKey(dir.dataDir);
    const port = await freePort();
    server = await startServer({ dataDir: dir.dataDir, port, env: serverEnv });
    issuer = new Issuer(port, apiKey, `b${Date.now()}`, Math.max(...LEVELS));

    process.stdout.write(`warming up (${WARMUP_MS / 1000} s)…\n`);
    await closedLoop(issuer, 16, 0, WARMUP_MS, server.pid);

    const levels: LevelResult[] = [];
    for (const clients of LEVELS) {
      process.stdout.write(`${clients} clients for ${LEVEL_MS / 1000} s…\n`);
      const r = await closedLoop(issuer, clients, RAMP_MS, LEVEL_MS, server.pid);
      levels.push({ clients, invoicesPerSecond: r.perSecond, p50Ms: r.p50, p99Ms: r.p99, errors: r.errors, ratioToCeiling: r.perSecond / ceiling, serverCpuPercent: r.cpuPercent, clientCpuPercent: r.clientCpuPercent });
    }
    const peak = levels.reduce((best, l) => (l.invoicesPerSecond > best.invoicesPerSecond ? l : best));

    const halfRate = Math.max(1, Math.round(peak.invoicesPerSecond / 2));
    process.stdout.write(`open loop at ${halfRate}/s for ${LEVEL_MS / 1000} s…\n`);
    const paced = await pacedLoop(issuer, halfRate, LEVEL_MS);
    const peakRss = peakRssKiB(server.pid);
    issuer.close();
    await server.kill('SIGTERM');

    const throughputOk = peak.invoicesPerSecond >= TARGET_RATIO * ceiling;
    const latencyOk = paced.p99Ms <= TARGET_P99_MS && paced.errors === 0;

    let profile: ProfileSummary | undefined;
    if (!throughputOk || forceProfile) {
      process.stdout.write(`profiling a single-process server (--cpu-prof, ${PROFILE_CLIENTS} clients, ${PROFILE_MS / 1000} s)…\n`);
      profile = await profileServer(dir.dataDir, apiKey);
    }

    const lines = [
      '',
      `Fapiao issue benchmark — ${new Date().toISOString()}`,
      `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), data in ${dir.dataDir.split('/').slice(0, -1).join('/') || '/'}`,
      `3-line normal invoices, one Idempotency-Key each; client and server share the machine`,
      '',
      `Ceiling: ${fixed(ceiling, 0)} single-row insert transactions/s (better-sqlite3, WAL, synchronous=FULL, ${CEILING_MS / 1000} s)`,
      '',
      ` clients  invoices/s   p50 ms   p99 ms  errors  ÷ ceiling  server CPU  client CPU`,
      ...levels.map((l) =>
        `${pad(String(l.clients), 8)}${pad(fixed(l.invoicesPerSecond, 0), 12)}${pad(fixed(l.p50Ms), 9)}${pad(fixed(l.p99Ms), 9)}${pad(String(l.errors), 8)}${pad(fixed(l.ratioToCeiling, 2), 11)}${pad(fixed(l.serverCpuPercent, 0) + ' %', 12)}${pad(fixed(l.clientCpuPercent, 0) + ' %', 12)}`),
      '',
      `Open loop at half the peak (${paced.targetPerSecond}/s for ${LEVEL_MS / 1000} s): achieved ${fixed(paced.achievedPerSecond, 0)}/s, ` +
        `p50 ${fixed(paced.p50Ms)} ms, p99 ${fixed(paced.p99Ms)} ms, max ${fixed(paced.maxMs)} ms, errors ${paced.errors}`,
      `Server peak RSS (VmHWM): ${peakRss === undefined ? 'unknown' : `${fixed(peakRss / 1024)} MiB`}`,
      '',
      'Targets',
      `  throughput ≥ ${TARGET_RATIO} × ceiling: peak ${fixed(peak.invoicesPerSecond, 0)}/s at ${peak.clients} clients = ${fixed(peak.ratioToCeiling, 2)} × ceiling   ${verdict(throughputOk)}`,
      `  p99 ≤ ${TARGET_P99_MS} ms at half the peak rate: ${fixed(paced.p99Ms)} ms${paced.errors ? ` (${paced.errors} errors)` : ''}   ${verdict(latencyOk)}`,
    ];
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
    const out = join(resultsDir, `issue-${new Date().toISOString().slice(0, 10)}.json`);
    const report = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      ceilingTransactionsPerSecond: ceiling,
      levels,
      peak: { clients: peak.clients, invoicesPerSecond: peak.invoicesPerSecond, ratioToCeiling: peak.ratioToCeiling },
      halfPeakOpenLoop: paced,
      serverPeakRssKiB: peakRss ?? null,
      targets: {
        throughput: { wanted: `≥ ${TARGET_RATIO} × ceiling`, ratio: peak.ratioToCeiling, pass: throughputOk },
        p99AtHalfPeak: { wanted: `≤ ${TARGET_P99_MS} ms`, p99Ms: paced.p99Ms, pass: latencyOk },
      },
      profile: profile ?? null,
    };
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(`\nwritten to ${relative(repoRoot, out)}\n`);
  } finally {
    issuer?.close();
    await server?.kill('SIGKILL');
    dir.remove();
  }
}

await main();
