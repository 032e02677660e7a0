// One-off measurement (R33): how long a verified backup, an encrypted one, a dry run and a restore
// take for a store holding many invoices, how big the files are, and how long the event loop
// stalls meanwhile: the CLI's backup runs on the caller's thread, a server's scheduled backup in a
// thread of its own at nice 10 (src/app/backup-thread.ts), both measured here. Not part of the test suite.
//   node --import tsx bench/backup.ts [--invoices 100000] [--db sqlite|postgres] [--postgres-url URL] [--fill bulk|app] [--skip-encrypted-restore]
// (`bench/backup.ts 100000`, the invoice count alone, still works.)
//
// --db postgres creates a database of its own on the server --postgres-url names (default
// postgres://postgres@127.0.0.1:5432/test) and drops it at the end; pg_dump, pg_restore and psql
// must be on PATH.
//
// The fill. --fill app issues every invoice through the store (issueInvoice, one transaction
// each): the reference, but slow (~4,000 a second on SQLite, ~350 on PostgreSQL). --fill bulk
// (the default) runs the same issueInvoice against a transaction double: reads (the merchant, the
// series, the chain heads) are answered from memory, and the writes go through the store's own
// repositories into a Kysely that records each compiled statement instead of running it. The
// recorded statements (invoice, audit entry, upload job) are then run in transactions of BATCH
// invoices (on PostgreSQL as multi-row INSERTs), with the usage counters, the series and the chain
// heads written once per transaction as they stand after its last invoice. Every row is therefore
// what the server would have written; the backup's own verification (the chain walk, audit
// statuses, row counts) checks the fill in full. Issue times are spread over one year on a clock
// of the bench's own, starting 1 January 2025 (Shanghai).
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { multiRowWriter, type Statement } from './support/multi-row-inserts.js';
import { withPostgres } from './support/postgres.js';
import { RecordingDriver, recordingKysely } from './support/recording-driver.js';
import { openStore, sqliteFile, type StoreConfig } from '../src/store/database.js';
import { repositories } from '../src/store/repositories.js';
import type { ChainHead, MerchantRecord, Ports, Repositories, Store, UsageChange } from '../src/app/ports.js';
import { addMerchant } from '../src/app/merchants.js';
import { grantNumberBlock } from '../src/app/number-blocks.js';
import { issueInvoice } from '../src/app/issue-invoice.js';
import { backUp, readKeyFile, restore } from '../src/app/backups.js';
import { backUpInThread } from '../src/app/backup-thread.js';
import { auditScope, invoiceChainScope } from '../src/domain/audit-chain.js';
import { GENESIS_HASH } from '../src/domain/invoice.js';
import { MAX_SEQUENCE } from '../src/domain/numbering.js';
import type { Clock } from '../src/domain/time.js';
import type { InvoiceRequest } from '../src/domain/draft.js';

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    invoices: { type: 'string' },
    db: { type: 'string', default: 'sqlite' },
    'postgres-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    fill: { type: 'string', default: 'bulk' },
    'skip-encrypted-restore': { type: 'boolean', default: false },
  },
});
const INVOICES = Number(options.invoices ?? positionals[0] ?? 100_000);
const DIALECT = options.db as 'sqlite' | 'postgres';
const FILL = options.fill as 'bulk' | 'app';
if (!Number.isInteger(INVOICES) || INVOICES < 1) throw new Error(`--invoices must be a positive whole number, got ${options.invoices ?? positionals[0]}`);
if (DIALECT !== 'sqlite' && DIALECT !== 'postgres') throw new Error(`--db must be sqlite or postgres, got ${DIALECT}`);
if (FILL !== 'bulk' && FILL !== 'app') throw new Error(`--fill must be bulk or app, got ${FILL}`);

/** Invoices per fill transaction (bulk), or issued concurrently (app). */
const BATCH = FILL === 'bulk' ? 10_000 : 500;

const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `bench #${i}`,
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43', address: '福建省福州市鼓楼区示例路1号', phone: '0591-88888888', bank: '', account: '', email: '' },
  lines: [
    { name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + (i % 900)}.00`, tax_rate: '0.06' },
    { name: '*现代服务*技术咨询', tax_code: '3040203000000000000', spec: '', unit: '次', quantity: '2', unit_price: '350.00', tax_rate: '0.06' },
  ],
});

/** 1 January 2025 00:00 in Shanghai, moving on by `step` ms at every reading: the fill's issue times. */
function yearClock(count: number): Clock {
  const start = Date.UTC(2025, 0, 1) - 8 * 3600_000;
  const step = (365 * 24 * 3600_000) / Math.max(count, 1) / 2; // issuing an invoice reads it twice (the invoice, its audit entry)
  let readings = 0;
  return { now: () => new Date(start + Math.floor(step * readings++)) };
}

// ---------------------------------------------------------------------------------------------
// The fill.

/** Runs one fill transaction's statements on the live database. */
interface Executor {
  run(statements: Statement[]): Promise<void>;
  /** After the fill: checkpoint (SQLite) or vacuum, analyze and checkpoint (PostgreSQL). */
  finish(): Promise<string>;
  close(): Promise<void>;
}

function sqliteExecutor(dataDir: string): Executor {
  const connection = new SQLite(sqliteFile(dataDir));
  connection.pragma('busy_timeout = 10000');
  connection.pragma('synchronous = NORMAL'); // the fill only; the server runs with FULL
  const prepared = new Map<string, SQLite.Statement>();
  const statement = (sql: string) => prepared.get(sql) ?? prepared.set(sql, connection.prepare(sql)).get(sql)!;
  const transaction = connection.transaction((statements: Statement[]) => {
    for (const s of statements) statement(s.sql).run(...s.parameters);
  });
  return {
    async run(statements) {
      transaction.immediate(statements);
    },
    async finish() {
      // What SQLite leaves in the WAL goes into the database file before anything is measured.
      connection.pragma('wal_checkpoint(TRUNCATE)');
      return 'wal_checkpoint(TRUNCATE)';
    },
    async close() {
      connection.close();
    },
  };
}

async function postgresExecutor(url: string): Promise<Executor> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const write = multiRowWriter(client);
  return {
    async run(statements) {
      await client.query('begin');
      try {
        await write(statements);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      }
    },
    async finish() {
      // What autovacuum would do soon after a bulk load, and a checkpoint, so that neither lands in the measurements.
      for (const table of ['invoice_records', 'invoice_states', 'audit_log', 'outbox', 'usage', 'chain_heads', 'invoice_series']) await client.query(`vacuum (analyze) ${table}`);
      await client.query('checkpoint');
      return 'vacuum (analyze) of the written tables, checkpoint';
    },
    async close() {
      await client.end();
    },
  };
}

/**
 * Issues `count` invoices with the real issueInvoice against a transaction double (see the top of
 * the file) and writes what it recorded, BATCH invoices per transaction.
 */
async function bulkFill(store: Store, merchant: MerchantRecord, count: number, clock: Clock, executor: Executor, progress: (done: number) => void): Promise<void> {
  const driver = new RecordingDriver();
  const recorded = repositories(recordingKysely(store.dialect, driver), store.dialect);
  const scopes = [invoiceChainScope(merchant.id), auditScope(merchant.id)];
  const heads = new Map<string, ChainHead>((await store.read.chain.heads(scopes)).map((h) => [h.scope, h]));
  const sequences = new Map<number, number>();
  const usage = new Map<string, UsageChange>();
  const tx: Repositories = {
    ...recorded,
    merchants: { ...recorded.merchants, hold: async () => {} },
    issues: {
      // The merchant, and numbers, chain heads and usage as this fill has left them (no request has a key).
      async context(q) {
        return {
          merchant: q.merchantId === merchant.id ? merchant : undefined,
          usage: new Map([...usage.values()].map((u) => [u.period, { ...u, since: null }])),
          blocks: [{ blockId: String(q.year), next: (sequences.get(q.year) ?? 0) + 1, last: MAX_SEQUENCE }],
          heads: q.scopes.map((scope) => heads.get(scope) ?? { scope, hash: GENESIS_HASH, index: 0 }),
        };
      },
      // The rows as single-row inserts (the executor merges them); numbers, chain heads and usage kept
      // here until the batch's end. No upload jobs: a recorded insert cannot learn the ids their
      // records point at, and the backup's size is the invoices and the audit log.
      async store(w) {
        for (const block of w.blocks) sequences.set(Number(block.blockId), block.next - 1);
        for (const head of w.heads) heads.set(head.scope, head);
        for (const change of w.usage) {
          const sum = usage.get(change.period) ?? { period: change.period, invoiceCount: 0, preTaxFen: 0n };
          usage.set(change.period, { period: change.period, invoiceCount: sum.invoiceCount + change.invoiceCount, preTaxFen: sum.preTaxFen + change.preTaxFen });
        }
        await recorded.invoices.insert(w.invoices);
        await recorded.idempotency.insert(w.keys);
        await recorded.audit.append(w.audit);
      },
    },
  };
  const ports: Ports = { store: { ...store, write: (work) => work(tx) }, clock };
  const caller = { merchantId: merchant.id, role: 'clerk' as const, actor: 'apikey:bench' };
  const upsertSeries = store.dialect === 'postgres'
    ? 'insert into invoice_series (merchant_id, year, last_sequence) values ($1, $2, $3) on conflict (merchant_id, year) do update set last_sequence = excluded.last_sequence'
    : 'insert into invoice_series (merchant_id, year, last_sequence) values (?, ?, ?) on conflict (merchant_id, year) do update set last_sequence = excluded.last_sequence';

  let writing: Promise<void> = Promise.resolve();
  for (let done = 0; done < count; ) {
    const size = Math.min(BATCH, count - done);
    driver.statements.length = 0;
    usage.clear();
    for (let i = 0; i < size; i++) {
      await issueInvoice(ports, caller, request(done + i));
      if (i % 500 === 499) await yieldToLoop(); // lets the previous batch's I/O move on meanwhile
    }
    // As the batch's last transaction would have left them: the usage counters, the chain heads, the series.
    await recorded.usage.add(merchant.id, [...usage.values()]);
    await recorded.chain.advance(scopes.map((scope) => heads.get(scope)!));
    const statements: Statement[] = driver.statements.map((q) => ({ sql: q.sql, parameters: q.parameters }));
    for (const [year, last] of sequences) statements.push({ sql: upsertSeries, parameters: [merchant.id, year, last] });
    await writing;
    done += size;
    const finished = done;
    writing = executor.run(statements).then(() => progress(finished));
    writing.catch(() => undefined); // awaited (and thrown) before the next batch is written
  }
  await writing;
}

async function appFill(store: Store, merchant: MerchantRecord, count: number, clock: Clock, progress: (done: number) => void): Promise<void> {
  const ports: Ports = { store, clock };
  const caller = { merchantId: merchant.id, role: 'clerk' as const, actor: 'apikey:bench' };
  for (let done = 0; done < count; done += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, count - done) }, (_, i) => issueInvoice(ports, caller, request(done + i))));
    progress(Math.min(done + BATCH, count));
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/** Runs `work`, timing each progress line from the start, and the event loop's worst stall. */
async function timed<T>(label: string, work: (progress: (line: string) => void) => Promise<T>) {
  const started = performance.now();
  const steps: Array<[string, number]> = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const result = await work((line) => steps.push([line, (performance.now() - started) / 1000]));
  loop.disable();
  const seconds = (performance.now() - started) / 1000;
  const stall = { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 };
  console.log(`\n${label}: ${seconds.toFixed(2)} s (event loop: p99 ${stall.p99Ms.toFixed(0)} ms, max ${stall.maxMs.toFixed(0)} ms)`);
  for (const [line, at] of steps) console.log(`  ${at.toFixed(2).padStart(8)} s  ${line}`);
  return { result, seconds, stall };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

function withDatabaseName(url: string, database: string): string {
  const match = /^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?(.*)$/i.exec(url);
  if (!match) throw new Error('--postgres-url must be a postgres:// URL');
  return `${match[1]}/${database}${match[3] ?? ''}`;
}

/** The live database's size: the SQLite file (+ WAL), or pg_database_size. */
async function databaseBytes(live: StoreConfig): Promise<number> {
  if (!live.databaseUrl) {
    const file = sqliteFile(live.dataDir);
    return statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  }
  return withPostgres(live.databaseUrl, async (c) => Number((await c.query<{ n: string }>('select pg_database_size(current_database()) as n')).rows[0]!.n));
}

const root = mkdtempSync(join(tmpdir(), 'fapiao-bench-backup-'));
const database = DIALECT === 'postgres' ? `fapiao_bench_backup_${randomBytes(4).toString('hex')}` : undefined;
const serverUrl = options['postgres-url']!;
const benchStarted = performance.now();
try {
  if (database) await withPostgres(serverUrl, (c) => c.query(`create database ${database}`));
  const live: StoreConfig = { dataDir: join(root, 'live'), ...(database && { databaseUrl: withDatabaseName(serverUrl, database) }) };
  const store = await openStore(live);
  const clock = yearClock(INVOICES);
  const merchant = await addMerchant({ store, clock }, { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
  // Numbers for the whole fill, as a block the tax service would have granted (the bulk fill numbers in memory).
  for (const year of new Set([clock.now().getUTCFullYear() - 1, clock.now().getUTCFullYear(), clock.now().getUTCFullYear() + 1])) {
    await grantNumberBlock({ store, clock }, merchant.id, { year, first: 1, last: 999_999_999 });
  }

  console.log(`${DIALECT}${database ? ` (database ${database})` : ''}: filling ${INVOICES.toLocaleString('en')} invoices (${FILL}) …`);
  const filling = performance.now();
  const progress = (done: number) =>
    process.stdout.write(`\r  ${done.toLocaleString('en')} / ${INVOICES.toLocaleString('en')} invoices, ${((performance.now() - filling) / 1000).toFixed(0)} s`);
  let maintenance = '';
  if (FILL === 'bulk') {
    const executor = DIALECT === 'postgres' ? await postgresExecutor(live.databaseUrl!) : sqliteExecutor(live.dataDir);
    try {
      await bulkFill(store, merchant, INVOICES, clock, executor, progress);
      const t = performance.now();
      maintenance = `${await executor.finish()} ${((performance.now() - t) / 1000).toFixed(1)} s`;
    } finally {
      await executor.close();
    }
  } else {
    await appFill(store, merchant, INVOICES, clock, progress);
  }
  process.stdout.write('\n');
  const stored = await store.read.invoices.count(merchant.id);
  if (stored !== INVOICES) throw new Error(`${stored} invoices stored, expected ${INVOICES}`);
  const liveBytes = await databaseBytes(live);
  const fillSeconds = (performance.now() - filling) / 1000;
  console.log(`filled ${INVOICES.toLocaleString('en')} invoices in ${fillSeconds.toFixed(1)} s${maintenance && ` (incl. ${maintenance})`}; database ${mb(liveBytes)}`);

  const keyFile = join(root, 'backup.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const key = readKeyFile(keyFile);
  const dir = join(root, 'backups');
  // The store stays open, as a running server's would: these are online backups.
  const plain = await timed('backup (online, verified)', (p) => backUp(live, { dir, progress: p }));
  const scheduled = await timed('scheduled backup (own thread, nice 10)', () => backUpInThread(live, { dir, now: new Date() }, 10));
  const encrypted = await timed('backup (online, verified, AES-256-GCM)', (p) => backUp(live, { dir, key, progress: p }));
  const dryRun = await timed('restore --dry-run', (p) => restore(live, plain.result.path, { dryRun: true, progress: p }));
  await store.close();
  const restored = await timed('restore (replaces the database)', (p) => restore(live, plain.result.path, { progress: p }));
  const restoredEncrypted = options['skip-encrypted-restore']
    ? undefined
    : await timed('restore of the encrypted backup', (p) => restore(live, encrypted.result.path, { key, progress: p }));

  const manifest = plain.result.manifest;
  const fileBytes = (m: typeof manifest) => m.files[m.dataFile]!.size;
  const summary = {
    dialect: DIALECT,
    invoices: manifest.rowCounts.invoice_records,
    auditEntries: manifest.rowCounts.audit_log,
    fill: { how: FILL, seconds: Math.round(fillSeconds) },
    sizesMB: {
      database: Math.round(liveBytes / 1048576),
      backupDataFile: Math.round(fileBytes(manifest) / 1048576),
      encryptedDataFile: Math.round(fileBytes(encrypted.result.manifest) / 1048576),
    },
    seconds: {
      backup: +plain.seconds.toFixed(1),
      scheduledBackup: +scheduled.seconds.toFixed(1),
      backupVerificationPart: manifest.verification!.seconds,
      encryptedBackup: +encrypted.seconds.toFixed(1),
      dryRun: +dryRun.seconds.toFixed(1),
      restore: +restored.seconds.toFixed(1),
      restoreEncrypted: restoredEncrypted ? +restoredEncrypted.seconds.toFixed(1) : 'skipped',
    },
    eventLoopMaxMs: Object.fromEntries(
      Object.entries({ backup: plain, scheduledBackup: scheduled, encryptedBackup: encrypted, dryRun, restore: restored, ...(restoredEncrypted && { restoreEncrypted: restoredEncrypted }) }).map(([k, v]) => [k, Math.round(v.stall.maxMs)]),
    ),
    verified: [plain, scheduled, encrypted].every((b) => b.result.manifest.verification?.ok) && [dryRun, restored, restoredEncrypted].every((r) => !r || r.result.verification.ok),
    walkedInvoices: restored.result.verification.invoices,
    totalSeconds: Math.round((performance.now() - benchStarted) / 1000),
  };
  console.log(`\nsummary: ${JSON.stringify(summary, null, 2)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
  if (database) await withPostgres(serverUrl, (c) => c.query(`drop database if exists ${database} with (force)`));
}
