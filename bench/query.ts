// `npm run bench:query [-- --db sqlite|postgres] [--invoices 1000000]`: how fast the real server
// answers queries with a big history stored.
//
// Fill: one merchant gets N invoices written straight into the store (not through HTTP), in big
// transactions. Each row is real: one priced draft (draftInvoice) varied in number, issue time and
// buyer, sealed into the merchant's hash chain (sealInvoice), and turned into SQL by the store's own
// repositories (repositories.ts, run against a Kysely that only records the statement), so columns,
// JSON body, digests and chain links are exactly what the server would have written. The series
// and the chain head are set to match, and a sample is read back through the store and checked.
// Invoices are spread evenly over 2025; 15 % go to people without a tax ID, 10 % to one large
// buyer, the rest evenly to 999 other buyers.
//
// Then the server runs as a child process (default settings: one process per core) and
// keep-alive clients send GET /api/v1/invoices/{number} for random numbers (one at a time for the
// unloaded latency; 16 at once, closed loop, 10 s, for the peak rate; then paced at half that rate,
// open loop, 10 s), then the filtered list query
// (GET /api/v1/invoices with a 31-day date range and a buyer tax ID) for a typical buyer and for
// the large one. The report gives p50/p99 and requests/s, and the databases' own query plans.
// Target: by-number p99 ≤ 5 ms, one client and at half the peak rate (the 16-client p99 is shown
// too: there the machine is saturated and latency is the queue). PASS/FAIL is printed; the exit code never depends on it.
// --keep leaves the filled store behind (the SQLite directory or the PostgreSQL database) to look into.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { freePort, repoRoot, SELLER_TAX_ID, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess } from '../test/support/server-process.js';
import { cpuSeconds } from './support/cpu.js';
import { withPostgres } from './support/postgres.js';
import { RecordingDriver, recordingKysely } from './support/recording-driver.js';
import { multiRowWriter, type Statement } from './support/multi-row-inserts.js';
import { openStore, sqliteFile } from '../src/store/database.js';
import { repositories } from '../src/store/repositories.js';
import type { InvoiceFilter, MerchantRecord, Ports } from '../src/app/ports.js';
import { addMerchant } from '../src/app/merchants.js';
import { createApiKey } from '../src/app/api-keys.js';
import { draftInvoice, type InvoiceRequest } from '../src/domain/draft.js';
import { printableCharacters } from '../src/documents/font.js';
import { chainLink, contentDigest, GENESIS_HASH, sealInvoice, type InvoiceDraft } from '../src/domain/invoice.js';
import { invoiceChainScope } from '../src/domain/audit-chain.js';
import { invoiceNumber } from '../src/domain/numbering.js';
import { organisationCodeCheckCharacter, usccCheckCharacter, validateTaxpayerId } from '../src/domain/taxpayer-id.js';
import { shanghaiTimestamp, systemClock } from '../src/domain/time.js';
import { IssueRequest } from '../src/http/schemas.js';

const YEAR = 2025;
const BATCH = 10_000; // rows per transaction
const BUYERS = 1_000; // buyer 0 is the large one
const CLIENTS = 16;
const WARMUP_MS = 2_000;
const RAMP_MS = 500;
const BY_NUMBER_MS = 10_000;
const SERIAL_MS = 3_000;
const LIST_MS = 5_000;
const TARGET_P99_MS = 5;
const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const serverEnv = { FAPIAO_RATE_LIMIT_PER_KEY: '100000000', FAPIAO_RATE_LIMIT_PER_IP: '100000000', LOG_LEVEL: 'warn' };

// ---------------------------------------------------------------------------------------------
// The store's own SQL, recorded instead of run (support/recording-driver.ts).

function recordingRepositories(dialect: 'sqlite' | 'postgres') {
  const driver = new RecordingDriver();
  const db = recordingKysely(dialect, driver);
  /** The statements `work` ran through the repositories, in order. */
  const recordAll = async (work: (repos: ReturnType<typeof repositories>) => Promise<unknown>): Promise<Array<{ sql: string; parameters: unknown[] }>> => {
    driver.statements.length = 0;
    await work(repositories(db, dialect));
    return driver.statements.map((query) => ({ sql: query.sql, parameters: [...query.parameters] }));
  };
  /** The one statement `work` ran through the repositories. */
  const record = async (work: (repos: ReturnType<typeof repositories>) => Promise<unknown>): Promise<{ sql: string; parameters: unknown[] }> => {
    const statements = await recordAll(work);
    if (statements.length !== 1) throw new Error(`expected one statement, recorded ${statements.length}`);
    return statements[0]!;
  };
  return { record, recordAll };
}

// ---------------------------------------------------------------------------------------------
// The invoices: one draft, varied; buyers with valid tax IDs; a deterministic random stream.

function randomStream(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BuyerChoice {
  name: string;
  taxId: string;
}

/** A valid 统一社会信用代码 for buyer i (organisation code and USCC check characters computed). */
function buyerTaxId(i: number): string {
  const organisation = String(10_000_000 + i).slice(-8);
  const first17 = `91350200${organisation}${organisationCodeCheckCharacter(organisation)}`;
  const id = first17 + usccCheckCharacter(first17);
  return validateTaxpayerId(id).normalized;
}

const buyers: BuyerChoice[] = Array.from({ length: BUYERS }, (_, i) => ({ name: `厦门第${i + 1}号软件有限公司`, taxId: buyerTaxId(i) }));
const person: BuyerChoice = { name: '个人', taxId: '' };

function pickBuyer(random: () => number): BuyerChoice {
  const r = random();
  if (r < 0.15) return person;
  if (r < 0.25) return buyers[0]!;
  return buyers[1 + Math.floor(random() * (BUYERS - 1))]!;
}

/** Shanghai midnight on 1 January of YEAR, and the step that spreads `count` invoices over the year. */
function timeline(count: number): { start: number; step: number } {
  const start = Date.UTC(YEAR, 0, 1) - 8 * 3600_000;
  const end = Date.UTC(YEAR + 1, 0, 1) - 8 * 3600_000;
  return { start, step: (end - start) / count };
}

// ---------------------------------------------------------------------------------------------
// The fill.

interface FillResult {
  seconds: number;
  insertSeconds: number;
  maintenance: { what: string; seconds: number } | null;
  lastNumber: string;
}

function* sealedRows(merchant: MerchantRecord, draft: InvoiceDraft, count: number) {
  const random = randomStream(20251);
  const { start, step } = timeline(count);
  const seller = { name: merchant.name, taxId: merchant.taxId, address: merchant.address, phone: merchant.phone, bank: merchant.bank, account: merchant.account };
  let head = { hash: GENESIS_HASH, index: 0 };
  for (let i = 0; i < count; i++) {
    const buyer = pickBuyer(random);
    const invoice = sealInvoice(merchant.id, {
      ...draft,
      buyer: { ...draft.buyer, name: buyer.name, taxId: buyer.taxId },
      number: invoiceNumber(YEAR, merchant.regionCode, i + 1),
      issuedAt: shanghaiTimestamp(new Date(start + Math.floor(i * step))),
      seller,
      issuer: 'apikey:bench',
    }, head);
    head = { hash: invoice.chainHash, index: invoice.chainIndex };
    yield invoice;
  }
}

async function fill(dialect: 'sqlite' | 'postgres', target: { dataDir: string; databaseUrl?: string }, merchant: MerchantRecord, count: number): Promise<FillResult> {
  const recorder = recordingRepositories(dialect);
  const request = IssueRequest.parse({ ...threeLineInvoice('bench'), buyer: { name: buyers[1]!.name, tax_id: buyers[1]!.taxId, address: '厦门市思明区软件园二期', phone: '0592-5550000' } }) as InvoiceRequest;
  const draft = draftInvoice(request, printableCharacters());
  const started = performance.now();
  let insertMs = 0;
  let lastRow: { number: string; chainHash: string; chainIndex: number } | undefined;

  // Rows are generated a batch of BATCH invoices at a time (the statements the store ran for each:
  // its sealed record, its state); each batch is written in one transaction.
  const batches = async function* () {
    let batch: Statement[] = [];
    let invoices = 0;
    for (const invoice of sealedRows(merchant, draft, count)) {
      batch.push(...(await recorder.recordAll((repos) => repos.invoices.insert([invoice]))));
      lastRow = invoice;
      if (++invoices % BATCH === 0) {
        yield { statements: batch, invoices: BATCH };
        batch = [];
      }
    }
    if (batch.length > 0) yield { statements: batch, invoices: invoices % BATCH };
  };
  const progress = (done: number) => process.stdout.write(`\r  ${done.toLocaleString('en')} / ${count.toLocaleString('en')} invoices, ${((performance.now() - started) / 1000).toFixed(0)} s`);

  let maintenance: FillResult['maintenance'] = null;
  let done = 0;
  if (dialect === 'sqlite') {
    const connection = new SQLite(sqliteFile(target.dataDir));
    try {
      connection.pragma('journal_mode = WAL');
      connection.pragma('synchronous = NORMAL'); // the fill only; the server runs with FULL
      connection.pragma('foreign_keys = ON');
      const prepared = new Map<string, SQLite.Statement>();
      const statement = (sql: string) => prepared.get(sql) ?? prepared.set(sql, connection.prepare(sql)).get(sql)!;
      const writeBatch = connection.transaction((statements: Statement[]) => {
        for (const s of statements) statement(s.sql).run(...s.parameters);
      });
      for await (const batch of batches()) {
        const t = performance.now();
        writeBatch(batch.statements);
        insertMs += performance.now() - t;
        progress((done += batch.invoices));
      }
      await finishChain(dialect, recorder, merchant, lastRow!, (sql, parameters) => void connection.prepare(sql).run(parameters));
      // What SQLite leaves in the WAL is copied into the database before the server opens it.
      connection.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      connection.close();
    }
  } else {
    // The store's one-row INSERTs, sent as multi-row INSERTs.
    const client = new pg.Client({ connectionString: target.databaseUrl });
    await client.connect();
    try {
      const write = multiRowWriter(client);
      let pending: Promise<void> = Promise.resolve();
      for await (const batch of batches()) {
        await pending; // the previous batch was written while this one was being sealed
        progress(done);
        pending = (async () => {
          const t = performance.now();
          await client.query('begin');
          await write(batch.statements);
          await client.query('commit');
          insertMs += performance.now() - t;
          done += batch.invoices;
        })();
        pending.catch(() => undefined); // awaited (and thrown) at the next batch; not an unhandled rejection meanwhile
      }
      await pending;
      progress(done);
      await finishChain(dialect, recorder, merchant, lastRow!, (sql, parameters) => client.query(sql, parameters).then(() => undefined));
      // What autovacuum would do shortly after a bulk load (statistics, visibility map), and a
      // checkpoint so that flushing the load's dirty pages does not land in the measurements.
      const t = performance.now();
      await client.query('vacuum (analyze) invoice_records, invoice_states');
      await client.query('checkpoint');
      maintenance = { what: 'vacuum (analyze) of the invoice tables as autovacuum would, and a checkpoint', seconds: (performance.now() - t) / 1000 };
    } finally {
      await client.end();
    }
  }
  process.stdout.write('\n');
  const seconds = (performance.now() - started) / 1000 - (maintenance?.seconds ?? 0);
  return { seconds, insertSeconds: insertMs / 1000, maintenance, lastNumber: lastRow!.number };
}

/** The series and the invoice chain head, as issuing the last invoice would have left them. */
async function finishChain(
  dialect: 'sqlite' | 'postgres',
  recorder: ReturnType<typeof recordingRepositories>,
  merchant: MerchantRecord,
  last: { number: string; chainHash: string; chainIndex: number },
  run: (sql: string, parameters: unknown[]) => Promise<void> | void,
): Promise<void> {
  const placeholders = dialect === 'postgres' ? '$1, $2, $3' : '?, ?, ?';
  await run(`insert into invoice_series (merchant_id, year, last_sequence) values (${placeholders})`, [merchant.id, YEAR, Number(last.number.slice(-15))]);
  const advance = await recorder.record((repos) => repos.chain.advance([{ scope: invoiceChainScope(merchant.id), hash: last.chainHash, index: last.chainIndex }]));
  await run(advance.sql, advance.parameters);
}

/** Reads a sample back through the store: the right count, digests and chain links intact. */
async function checkSample(ports: Ports, merchant: MerchantRecord, count: number): Promise<void> {
  const stored = await ports.store.read.invoices.count(merchant.id);
  if (stored !== count) throw new Error(`${stored} invoices stored, expected ${count}`);
  const random = randomStream(7);
  for (let i = 0; i < 200; i++) {
    const sequence = 2 + Math.floor(random() * (count - 1));
    const [previous, invoice] = await Promise.all(
      [sequence - 1, sequence].map((s) => ports.store.read.invoices.get(merchant.id, invoiceNumber(YEAR, merchant.regionCode, s))),
    );
    if (!invoice || !previous) throw new Error(`invoice ${sequence} not found`);
    if (contentDigest(invoice) !== invoice.digest || chainLink(invoice.prevHash, invoice.digest) !== invoice.chainHash || invoice.prevHash !== previous.chainHash) {
      throw new Error(`invoice ${invoice.number} does not check out`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Load: closed-loop keep-alive clients against the real server.

interface LoadResult {
  clients: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  /** List queries: average items on a page, from every 20th answer. */
  averageItems?: number;
  /** CPU used in the window, in % of one core: the server's processes, PostgreSQL's (when local), this client. */
  serverCpuPercent: number;
  databaseCpuPercent: number | null;
  clientCpuPercent: number;
}

/** Where CPU time is read from: the server's process tree, and PostgreSQL's postmaster when it runs here. */
const cpuRoots: { server: number[]; database: number[] } = { server: [], database: [] };

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function get(agent: http.Agent, port: number, apiKey: string, path: string, keepBody: boolean): Promise<{ status: number; body?: string }> {
  return new Promise((resolve) => {
    const request = http.request({ agent, host: '127.0.0.1', port, method: 'GET', path, headers: { authorization: `Bearer ${apiKey}` } }, (response) => {
      const chunks: Buffer[] = [];
      if (keepBody) response.on('data', (chunk: Buffer) => chunks.push(chunk));
      else response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ...(keepBody && { body: Buffer.concat(chunks).toString() }) }));
      response.on('error', () => resolve({ status: 0 }));
    });
    request.on('error', () => resolve({ status: 0 }));
    request.end();
  });
}

type Send = (sample: boolean) => Promise<{ status: number; items?: number }>;
type Answer = { status: number; items?: number };

/** `clients` requests in flight at all times, each sent when the previous one is answered. */
function closedLoop(clients: number, rampMs: number, windowMs: number, send: Send): Promise<LoadResult> {
  return measured(clients, rampMs, windowMs, async (windowEnd, take) => {
    let sent = 0;
    const worker = async () => {
      while (performance.now() < windowEnd) {
        const started = performance.now();
        take(started, await send(++sent % 20 === 0));
      }
    };
    await Promise.all(Array.from({ length: clients }, worker));
  });
}

/**
 * Open loop: `perSecond` requests, each sent at its scheduled time whatever the answers before it,
 * and its latency taken from that time (so a server that falls behind cannot hide its queue).
 */
function pacedLoop(perSecond: number, rampMs: number, windowMs: number, send: Send): Promise<LoadResult> {
  return measured(0, rampMs, windowMs, async (windowEnd, take) => {
    const interval = 1000 / perSecond;
    const start = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let sent = 0; performance.now() < windowEnd; ) {
      const due = Math.floor((performance.now() - start) / interval) + 1;
      for (; sent < due; sent++) {
        const scheduled = start + sent * interval;
        inFlight.push(send(sent % 20 === 0).then((answer) => take(scheduled, answer)));
      }
      await sleep(1);
    }
    await Promise.all(inFlight);
  });
}

/** Latency, rate and CPU of the requests sent and answered inside the window after `rampMs`. */
async function measured(clients: number, rampMs: number, windowMs: number, drive: (windowEnd: number, take: (started: number, answer: Answer) => void) => Promise<void>): Promise<LoadResult> {
  const windowStart = performance.now() + rampMs;
  const windowEnd = windowStart + windowMs;
  const latencies: number[] = [];
  const items: number[] = [];
  let errors = 0;
  let cpuAtStart = { server: NaN, database: NaN, client: process.cpuUsage() };
  const startCpu = setTimeout(() => {
    cpuAtStart = { server: cpuSeconds(cpuRoots.server), database: cpuSeconds(cpuRoots.database), client: process.cpuUsage() };
  }, rampMs);
  await drive(windowEnd, (started, answer) => {
    const ended = performance.now();
    if (started < windowStart || ended > windowEnd) return;
    if (answer.status !== 200) errors += 1;
    else latencies.push(ended - started);
    if (answer.items !== undefined) items.push(answer.items);
  });
  clearTimeout(startCpu);
  const percentOfWindow = (seconds: number) => (seconds / (windowMs / 1000)) * 100;
  const client = process.cpuUsage(cpuAtStart.client);
  const sorted = Float64Array.from(latencies).sort();
  return {
    serverCpuPercent: percentOfWindow(cpuSeconds(cpuRoots.server) - cpuAtStart.server),
    databaseCpuPercent: cpuRoots.database.length > 0 ? percentOfWindow(cpuSeconds(cpuRoots.database) - cpuAtStart.database) : null,
    clientCpuPercent: percentOfWindow((client.user + client.system) / 1e6),
    clients, requests: sorted.length, perSecond: sorted.length / (windowMs / 1000),
    p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN, errors,
    ...(items.length > 0 && { averageItems: items.reduce((a, b) => a + b, 0) / items.length }),
  };
}

// ---------------------------------------------------------------------------------------------
// Query plans, from the databases themselves, for the statements the repositories run.

async function queryPlans(dialect: 'sqlite' | 'postgres', target: { dataDir: string; databaseUrl?: string }, statements: Array<{ label: string; sql: string; parameters: unknown[] }>): Promise<Array<{ label: string; plan: string[] }>> {
  const plans: Array<{ label: string; plan: string[] }> = [];
  if (dialect === 'sqlite') {
    const connection = new SQLite(sqliteFile(target.dataDir), { readonly: true });
    try {
      for (const s of statements) {
        const rows = connection.prepare(`explain query plan ${s.sql}`).all(s.parameters) as Array<{ detail: string }>;
        const t = performance.now();
        connection.prepare(s.sql).all(s.parameters);
        plans.push({ label: s.label, plan: [...rows.map((r) => r.detail), `(ran in ${(performance.now() - t).toFixed(2)} ms in-process)`] });
      }
    } finally {
      connection.close();
    }
  } else {
    const client = new pg.Client({ connectionString: target.databaseUrl });
    await client.connect();
    try {
      for (const s of statements) {
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, costs off, buffers) ${s.sql}`, s.parameters);
        plans.push({ label: s.label, plan: rows.map((r) => r['QUERY PLAN']) });
      }
    } finally {
      await client.end();
    }
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------

const fixed = (n: number | undefined, digits = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '—');
const pad = (text: string, width: number) => text.padStart(width);

interface Options {
  db: 'sqlite' | 'postgres';
  invoices: number;
  postgresUrl: string;
  keep: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite' },
      invoices: { type: 'string', default: '1000000' },
      keep: { type: 'boolean', default: false },
      'postgres-url': { type: 'string', default: process.env.BENCH_POSTGRES_URL ?? DEFAULT_POSTGRES_URL },
    },
  });
  if (values.db !== 'sqlite' && values.db !== 'postgres') throw new Error(`--db is sqlite or postgres, not "${values.db}"`);
  const invoices = Number(values.invoices);
  if (!Number.isInteger(invoices) || invoices < 2 || invoices > 100_000_000) throw new Error(`--invoices is a whole number from 2 to 100,000,000, not "${values.invoices}"`);
  return { db: values.db, invoices, postgresUrl: values['postgres-url']!, keep: values.keep ?? false };
}

async function main(): Promise<void> {
  const options = readOptions();
  const dialect = options.db;
  const loadAtStart = loadavg()[0]!; // the machine may be shared: other work shows up here
  const dir = tempDataDir('fapiao-query-');
  let databaseName: string | undefined;
  let server: ServerProcess | undefined;
  let agent: http.Agent | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaned ??= (async () => {
      agent?.destroy();
      await server?.kill('SIGKILL');
      if (options.keep) {
        process.stdout.write(`kept: ${databaseName ? `database ${databaseName} (drop database ${databaseName} with (force))` : sqliteFile(dir.dataDir)}\n`);
        if (databaseName) dir.remove();
        return;
      }
      if (databaseName) await withPostgres(options.postgresUrl, (c) => c.query(`drop database if exists ${databaseName} with (force)`)).catch((e: Error) => process.stderr.write(`could not drop ${databaseName}: ${e.message}\n`));
      dir.remove();
    })());
  process.once('SIGINT', () => void cleanUp().finally(() => process.exit(130)));
  try {
    const target: { dataDir: string; databaseUrl?: string } = { dataDir: dir.dataDir };
    let postgresVersion = '';
    if (dialect === 'postgres') {
      databaseName = `fapiao_bench_${randomBytes(4).toString('hex')}`;
      postgresVersion = await withPostgres(options.postgresUrl, async (c) => {
        await c.query(`create database ${databaseName}`);
        const { rows } = await c.query<{ v: string; pid: number }>(`select current_setting('server_version') as v, pg_backend_pid() as pid`);
        // The postmaster (our backend's parent) and its children are PostgreSQL's CPU, if it runs on this machine.
        try {
          const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
          cpuRoots.database.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        } catch {
          // a remote server: its CPU is not ours to see
        }
        return rows[0]!.v;
      });
      const url = new URL(options.postgresUrl);
      url.pathname = `/${databaseName}`;
      target.databaseUrl = url.toString();
    }

    // The merchant and its key through the application, then the store is closed for the bulk fill.
    let store = await openStore(target);
    const merchant = await addMerchant({ store, clock: systemClock }, { name: '福州测试商贸有限公司', taxId: SELLER_TAX_ID, regionCode: '35', address: '福建省福州市鼓楼区示例路1号', phone: '0591-88888888' });
    const { key: apiKey } = await createApiKey({ store, clock: systemClock }, { merchantId: merchant.id, role: 'clerk', label: 'bench' });
    await store.close();

    process.stdout.write(`filling ${dialect} with ${options.invoices.toLocaleString('en')} invoices for one merchant…\n`);
    const filled = await fill(dialect, target, merchant, options.invoices);
    if (filled.maintenance) process.stdout.write(`  ${filled.maintenance.what}: ${filled.maintenance.seconds.toFixed(1)} s\n`);
    store = await openStore(target, { migrate: false });
    try {
      await checkSample({ store, clock: systemClock }, merchant, options.invoices);
    } finally {
      await store.close();
    }

    const port = await freePort();
    server = await startServer({ dataDir: dir.dataDir, port, env: { ...serverEnv, ...(target.databaseUrl && { DATABASE_URL: target.databaseUrl }) }, readyTimeoutMs: 60_000 });
    cpuRoots.server = [server.pid];
    // 'fifo': paced requests spread over all the sockets, hence over the server's processes (support/issuer.ts).
    agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS, maxFreeSockets: CLIENTS, scheduling: 'fifo' });
    const random = randomStream(99);
    const someNumber = () => invoiceNumber(YEAR, merchant.regionCode, 1 + Math.floor(random() * options.invoices));
    const byNumber = () => get(agent!, port, apiKey, `/api/v1/invoices/${someNumber()}`, false);
    const days = 365;
    const listPath = (buyer: BuyerChoice) => {
      const from = new Date(Date.UTC(YEAR, 0, 1) + Math.floor(random() * (days - 30)) * 86_400_000);
      const to = new Date(from.getTime() + 30 * 86_400_000);
      return `/api/v1/invoices?date_from=${from.toISOString().slice(0, 10)}&date_to=${to.toISOString().slice(0, 10)}&buyer_tax_id=${buyer.taxId}`;
    };
    const list = (chooseBuyer: () => BuyerChoice) => async (sample: boolean) => {
      const answer = await get(agent!, port, apiKey, listPath(chooseBuyer()), sample);
      return { status: answer.status, ...(answer.body !== undefined && answer.status === 200 && { items: (JSON.parse(answer.body) as { items: unknown[] }).items.length }) };
    };
    const typicalBuyer = () => buyers[1 + Math.floor(random() * (BUYERS - 1))]!;
    const largeBuyer = () => buyers[0]!;

    process.stdout.write(`warming up (${WARMUP_MS / 1000} s)…\n`);
    await closedLoop(CLIENTS, 0, WARMUP_MS, byNumber);
    await closedLoop(CLIENTS, 0, WARMUP_MS / 2, list(typicalBuyer));
    process.stdout.write(`GET /api/v1/invoices/{number}: 1 client for ${SERIAL_MS / 1000} s, ${CLIENTS} clients for ${BY_NUMBER_MS / 1000} s…\n`);
    const serial = await closedLoop(1, RAMP_MS, SERIAL_MS, byNumber);
    const loaded = await closedLoop(CLIENTS, RAMP_MS, BY_NUMBER_MS, byNumber);
    process.stdout.write(`  … and paced at half the ${CLIENTS}-client rate (${fixed(loaded.perSecond / 2, 0)}/s) for ${BY_NUMBER_MS / 1000} s…\n`);
    const halfPeak = await pacedLoop(loaded.perSecond / 2, RAMP_MS, BY_NUMBER_MS, byNumber);
    process.stdout.write(`GET /api/v1/invoices?date_from&date_to&buyer_tax_id: ${CLIENTS} clients for ${LIST_MS / 1000} s each, typical and large buyer…\n`);
    const listSerial = await closedLoop(1, RAMP_MS, SERIAL_MS, list(typicalBuyer));
    const listTypical = await closedLoop(CLIENTS, RAMP_MS, LIST_MS, list(typicalBuyer));
    const listLarge = await closedLoop(CLIENTS, RAMP_MS, LIST_MS, list(largeBuyer));
    agent.destroy();
    await server.kill('SIGTERM');

    // The plans of the statements the repositories run for these requests, on the filled database.
    const recorder = recordingRepositories(dialect);
    const filter = (buyer: BuyerChoice): InvoiceFilter => ({ dateFrom: `${YEAR}-03-01`, dateTo: `${YEAR}-03-31`, buyerTaxId: buyer.taxId });
    const plans = await queryPlans(dialect, target, [
      { label: 'invoice by number', ...(await recorder.record((r) => r.invoices.get(merchant.id, someNumber()))) },
      { label: 'list, March, typical buyer (limit 51)', ...(await recorder.record((r) => r.invoices.list(merchant.id, filter(buyers[2]!), 51))) },
      { label: 'list, March, large buyer (limit 51)', ...(await recorder.record((r) => r.invoices.list(merchant.id, filter(buyers[0]!), 51))) },
    ]);

    // Judged below saturation, as bench:issue judges its p99: at 16 closed-loop clients the server and
    // the clients share the 2 cores flat out, and the latency is mostly the queue (16 ÷ rate).
    const byNumberOk = serial.p99Ms <= TARGET_P99_MS && halfPeak.p99Ms <= TARGET_P99_MS && serial.errors + halfPeak.errors === 0;
    const percent = (n: number | null) => (n === null ? '—' : `${fixed(n, 0)} %`);
    const row = (label: string, r: LoadResult) =>
      `${label.padEnd(40)}${pad(r.clients ? String(r.clients) : 'paced', 8)}${pad(fixed(r.perSecond, 0), 8)}${pad(fixed(r.p50Ms, 2), 9)}${pad(fixed(r.p99Ms, 2), 9)}${pad(fixed(r.maxMs, 1), 9)}${pad(String(r.errors), 7)}` +
      `${pad(r.averageItems === undefined ? '' : fixed(r.averageItems), 6)}${pad(percent(r.serverCpuPercent), 9)}${pad(percent(r.databaseCpuPercent), 7)}${pad(percent(r.clientCpuPercent), 8)}`;
    const lines = [
      '',
      `Fapiao query benchmark — ${new Date().toISOString()}`,
      `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}); ` +
        (dialect === 'postgres' ? `PostgreSQL ${postgresVersion} at ${new URL(target.databaseUrl!).host}, fresh database ${databaseName}${options.keep ? "" : " (dropped afterwards)"}` : `SQLite file in ${dir.dataDir.split('/').slice(0, -1).join('/') || '/'}`),
      `server: default settings (one process per core); clients on the same machine, keep-alive; load average before the run ${fixed(loadAtStart, 2)}`,
      '',
      `Fill: ${options.invoices.toLocaleString('en')} sealed, chained 3-line invoices for one merchant, spread over ${YEAR}, in ${fixed(filled.seconds)} s ` +
        `(${fixed(options.invoices / filled.seconds, 0)}/s; ${fixed(filled.insertSeconds)} s of it writing, ${BATCH.toLocaleString('en')} rows a transaction)` +
        (filled.maintenance ? `, then ${filled.maintenance.what}: ${fixed(filled.maintenance.seconds)} s` : ''),
      `  buyers: 15 % people without tax ID, 10 % one large buyer (~${fixed((options.invoices * 0.1) / 12, 0)} a month), 75 % over 999 others (~${fixed((options.invoices * 0.75) / 999 / 12, 0)} a month each); a sample of 200 read back and checked`,
      '',
      `${'request'.padEnd(40)} clients   req/s   p50 ms   p99 ms   max ms errors items   server     db  client   (CPU, % of one core)`,
      row('GET /invoices/{number}, random number', serial),
      row('GET /invoices/{number}, random number', loaded),
      row('GET /invoices/{number}, half that rate', halfPeak),
      row('list: 31 days + typical buyer tax ID', listSerial),
      row('list: 31 days + typical buyer tax ID', listTypical),
      row('list: 31 days + large buyer tax ID', listLarge),
      `(items: average page size, from every 20th answer; the page size is 50)`,
      '',
      `Query plans (${dialect === 'postgres' ? 'EXPLAIN ANALYZE' : 'EXPLAIN QUERY PLAN'}, the repositories' own statements):`,
      ...plans.flatMap((p) => [`  ${p.label}:`, ...p.plan.map((line) => `    ${line}`)]),
      '',
      'Target',
      `  GET /invoices/{number} p99 ≤ ${TARGET_P99_MS} ms with ${options.invoices.toLocaleString('en')} invoices stored, one client and paced at half the ${CLIENTS}-client rate: ` +
        `${fixed(serial.p99Ms, 2)} and ${fixed(halfPeak.p99Ms, 2)} ms${serial.errors + halfPeak.errors ? ` (${serial.errors + halfPeak.errors} errors)` : ''}   ${byNumberOk ? 'PASS' : 'FAIL'}` +
        ` (saturated, ${CLIENTS} clients: ${fixed(loaded.p99Ms, 2)} ms)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');

    const resultsDir = join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const out = join(resultsDir, `query-${dialect}-${new Date().toISOString().slice(0, 10)}.json`);
    const report = {
      at: new Date().toISOString(), node: process.version, cpus: availableParallelism(), loadAverageAtStart: loadAtStart, db: dialect, ...(postgresVersion && { postgresVersion }),
      invoices: options.invoices, fill: filled,
      byNumber: { serial, loaded, halfPeak }, list: { serial: listSerial, typicalBuyer: listTypical, largeBuyer: listLarge },
      plans,
      target: { wanted: `by-number p99 ≤ ${TARGET_P99_MS} ms, one client and at half the peak rate`, p99Ms: Math.max(serial.p99Ms, halfPeak.p99Ms), pass: byNumberOk },
    };
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(`\nwritten to ${relative(repoRoot, out)}\n`);
  } finally {
    await cleanUp();
  }
}

await main();
