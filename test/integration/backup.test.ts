// R33: every backup is verified by restoring it; restore refuses what it cannot trust (corrupt,
// foreign, newer, wrong key, database in use) with a coded fault, and a dry run changes nothing.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { getPriority, hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { storesUnderTest } from '../support/stores.js';
import { openStore, sqliteFile, type StoreConfig } from '../../src/store/database.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { voidInvoice } from '../../src/app/void-invoice.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { applyRetention, backUp, readKeyFile, restore, scheduleBackups } from '../../src/app/backups.js';
import { backUpInThread } from '../../src/app/backup-thread.js';
import { Fault } from '../../src/domain/faults.js';
import type { Manifest } from '../../src/store/backup.js';
import { LATEST_SCHEMA_VERSION } from '../../src/store/migrate.js';
import type { Store } from '../../src/app/ports.js';
import { systemClock } from '../../src/domain/time.js';
import type { Caller } from '../../src/domain/access.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';

const BUYER = '备份校验购买方有限公司';
const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `#${i}`,
  buyer: { name: BUYER, tax_id: '91350100M000100Y43', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + i}.00`, tax_rate: '0.06' }],
});

/** A database of its own per call: a SQLite data dir, or a PostgreSQL schema named so the run's teardown drops it. */
async function freshDatabase(kind: string): Promise<StoreConfig> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-backup-test-'));
  const url = process.env.TEST_DATABASE_URL;
  if (kind === 'sqlite' || !url) return { dataDir };
  const schema = `fapiao_test_${process.env.FAPIAO_TEST_RUN ?? 'adhoc'}_${randomBytes(6).toString('hex')}`;
  await onPostgres(url, (c) => c.query(`create schema ${schema}`));
  return { dataDir, databaseUrl: url, schema };
}

async function onPostgres<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The fault code a promise is refused with (or 'resolved'). */
const refusal = (promise: Promise<unknown>) => promise.then(() => 'resolved', (error: { code?: unknown }) => error.code);
const readManifestFile = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
const editManifest = (dir: string, edit: (m: Manifest) => void) => {
  const manifest = readManifestFile(dir);
  edit(manifest);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
};
/** The nice value of each thread of this process (Linux: the 19th field of /proc/self/task/<tid>/stat). */
const threadNiceValues = () =>
  readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
const intact = async (store: Store) => (await verifyChains({ store, clock: systemClock })).flatMap((r) => r.breaks);

for (const kind of storesUnderTest) {
  describe(`backup and restore on ${kind.name}`, { timeout: 120_000 }, () => {
    const opened: Store[] = [];
    const dirs: string[] = [];
    let source: StoreConfig;
    let store: Store;
    let caller: Caller;
    let numbers: string[];
    let backups: string;
    const ports = () => ({ store, clock: systemClock });
    const open = async (config: StoreConfig) => {
      const s = await openStore(config);
      opened.push(s);
      return s;
    };
    const fresh = async () => {
      const config = await freshDatabase(kind.name);
      dirs.push(config.dataDir);
      return config;
    };

    beforeEach(async () => {
      source = await fresh();
      backups = mkdtempSync(join(tmpdir(), 'fapiao-backups-'));
      dirs.push(backups);
      store = await open(source);
      const merchant = await addMerchant(ports(), { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
      await grantTestNumbers(ports(), merchant.id);
      caller = { merchantId: merchant.id, role: 'clerk', actor: 'clerk1' };
      numbers = [];
      for (let i = 0; i < 5; i++) numbers.push((await issueInvoice(ports(), caller, request(i))).invoice.number);
      await voidInvoice(ports(), caller, numbers[1]!, '开错了');
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    it('backs up with a verified manifest and restores into a fresh database: same invoices, chains intact', async () => {
      const { path, manifest } = await backUp(source, { dir: backups });
      expect(basename(path)).toMatch(new RegExp(`^fapiao-\\d{8}T\\d{6}\\.\\d{3}Z-${kind.name}$`));
      expect(manifest).toMatchObject({ dialect: kind.name, rowCounts: { invoice_records: 5, invoice_states: 5, merchants: 1 }, schema: { latest: LATEST_SCHEMA_VERSION } });
      expect(manifest.verification).toMatchObject({ ok: true, invoices: 5, problems: [] });
      expect(manifest.chainHeads.map((h) => h.scope).sort()).toEqual([`audit:${caller.merchantId}`, `invoices:${caller.merchantId}`]);
      expect(readdirSync(backups)).toEqual([basename(path)]); // nothing temporary left behind

      const target = await fresh();
      const result = await restore(target, path, {});
      expect(result).toMatchObject({ dryRun: false, verification: { ok: true, invoices: 5 } });
      const restored = await open(target);
      for (const number of numbers) {
        expect((await restored.read.invoices.get(caller.merchantId, number))?.digest).toBe((await store.read.invoices.get(caller.merchantId, number))?.digest);
      }
      expect((await restored.read.invoices.get(caller.merchantId, numbers[1]!))?.status).toBe('voided');
      expect(await intact(restored)).toEqual([]);
    });

    it('takes a consistent backup while invoices keep being issued', async () => {
      // Enough rows that the SQLite copy takes many steps, with commits landing between them.
      // 30 at a time: 300 at once would queue on the PostgreSQL pool beyond its wait bound on a busy machine.
      for (let i = 0; i < 300; i += 30) await Promise.all(Array.from({ length: 30 }, (_, j) => issueInvoice(ports(), caller, request(10 + i + j))));
      let issuing = true;
      let issued = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; issuing; i++) {
          await issueInvoice(ports(), caller, request(1000 + w * 10_000 + i));
          issued += 1;
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      // On a busy machine a copy can slip between two commits; take another until one has had
      // commits land while it was being copied (each one must verify regardless).
      let backup: Awaited<ReturnType<typeof backUp>> | undefined;
      let before = 0;
      let duringCopy = 0;
      for (let attempt = 0; attempt < 5 && duringCopy === 0; attempt++) {
        before = issued;
        const progress = (line: string) => void (line.startsWith('copied ') && line.endsWith(' s') && (duringCopy = issued - before));
        backup = await backUp(source, { dir: backups, progress });
        expect(backup.manifest.verification).toMatchObject({ ok: true, problems: [] });
      }
      issuing = false;
      await Promise.all(writers);
      const { path, manifest } = backup!;

      expect(duringCopy).toBeGreaterThan(0); // invoices were committed while the copy was being taken
      const total = await store.read.invoices.count(caller.merchantId);
      expect(manifest.rowCounts.invoice_records).toBeGreaterThanOrEqual(305 + before);
      expect(manifest.rowCounts.invoice_records).toBeLessThanOrEqual(total);
      // Its chain head is the head of exactly the invoices it holds, and a restore agrees.
      expect(manifest.chainHeads.find((h) => h.scope === `invoices:${caller.merchantId}`)?.length).toBe(manifest.rowCounts.invoice_records);
      expect((await restore(await fresh(), path, { dryRun: true })).verification).toMatchObject({ ok: true, invoices: manifest.rowCounts.invoice_records });
    });

    it('refuses a backup with one flipped byte in its data file as corrupt (5006)', async () => {
      const { path, manifest } = await backUp(source, { dir: backups });
      const file = join(path, manifest.dataFile);
      const bytes = readFileSync(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      writeFileSync(file, bytes);
      expect(await refusal(restore(await fresh(), path, { dryRun: true }))).toBe(5006);
    });

    it('refuses a backup of the other kind of database, or a directory that is no backup, as foreign (5007)', async () => {
      const { path } = await backUp(source, { dir: backups });
      editManifest(path, (m) => void (m.dialect = kind.name === 'sqlite' ? 'postgres' : 'sqlite'));
      expect(await refusal(restore(await fresh(), path, { dryRun: true }))).toBe(5007);
      expect(await refusal(restore(await fresh(), mkdtempSync(join(backups, 'empty-')), { dryRun: true }))).toBe(5007);
    });

    it('refuses a backup whose chain heads do not match its data as foreign (5007)', async () => {
      const { path } = await backUp(source, { dir: backups });
      editManifest(path, (m) => void (m.chainHeads[0]!.hash = 'f'.repeat(64)));
      expect(await refusal(restore(await fresh(), path, { dryRun: true }))).toBe(5007);
    });

    it('refuses a backup made by a newer schema (5008)', async () => {
      const { path } = await backUp(source, { dir: backups });
      editManifest(path, (m) => {
        m.schema.applied.push('999-from-the-future');
        m.schema.latest = '999-from-the-future';
      });
      expect(await refusal(restore(await fresh(), path, { dryRun: true }))).toBe(5008);
    });

    it('restores a backup from an older schema (here: before the first migration) and migrates it', async () => {
      const empty = await fresh();
      if (!empty.databaseUrl) new SQLite(sqliteFile(empty.dataDir)).close();
      const { manifest, path } = await backUp(empty, { dir: backups });
      expect(manifest.schema).toEqual({ latest: null, applied: [] });
      const target = await fresh();
      const { migrated } = (await restore(target, path, {})).verification;
      expect([migrated[0], migrated.at(-1)]).toEqual(['001-core', LATEST_SCHEMA_VERSION]); // every migration, in order
      expect(await (await open(target)).read.merchants.list()).toEqual([]);
    });

    it('encrypts at rest: round-trips with the key, refuses a wrong or missing key (5010), no plain data in the file', async () => {
      const keyFile = join(backups, 'backup.key');
      writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
      const { path, manifest } = await backUp(source, { dir: backups, key: readKeyFile(keyFile) });
      expect(manifest).toMatchObject({ dataFile: `${kind.name === 'sqlite' ? 'fapiao.db' : 'fapiao.dump'}.enc`, encryption: { algorithm: 'aes-256-gcm' } });
      expect(JSON.stringify(manifest)).not.toContain(readFileSync(keyFile, 'utf8'));
      expect(readFileSync(join(path, manifest.dataFile)).includes(Buffer.from(BUYER))).toBe(false);

      const target = await fresh();
      expect(await refusal(restore(target, path, { dryRun: true }))).toBe(5010);
      expect(await refusal(restore(target, path, { dryRun: true, key: randomBytes(32) }))).toBe(5010);
      await restore(target, path, { key: readKeyFile(keyFile) });
      const restored = await open(target);
      expect(await restored.read.invoices.count(caller.merchantId)).toBe(5);
      expect(await intact(restored)).toEqual([]);
    });

    it('refuses a key file everyone can read (5010)', () => {
      const keyFile = join(backups, 'open.key');
      writeFileSync(keyFile, randomBytes(32));
      chmodSync(keyFile, 0o644);
      expect(() => readKeyFile(keyFile)).toThrow(expect.objectContaining({ code: 5010 }));
    });

    it('keeps the newest N verified backups, and never the last one away', async () => {
      const made: string[] = [];
      for (let i = 0; i < 3; i++) made.push((await backUp(source, { dir: backups })).path);
      expect(await applyRetention(backups, kind.name as 'sqlite' | 'postgres', 2)).toEqual([made[0]]);
      expect(readdirSync(backups).sort()).toEqual([basename(made[1]!), basename(made[2]!)]);
      await applyRetention(backups, kind.name as 'sqlite' | 'postgres', 0);
      expect(readdirSync(backups)).toEqual([basename(made[2]!)]);
    });

    it('leaves nothing that looks like a backup when it fails half-way (5004)', async () => {
      const crash = (line: string) => {
        if (line.startsWith('copied')) throw new Error('disk gone'); // after the data file is written, before the manifest
      };
      expect(await refusal(backUp(source, { dir: backups, progress: crash }))).toBe(5004);
      expect(readdirSync(backups)).toEqual([]);
    });

    it('runs on a schedule: backs up when no recent verified backup exists, logs failures with their code', async () => {
      const logged: Array<{ message: string; code?: number }> = [];
      const log = { info: (_: object, message: string) => logged.push({ message }), warn: (fields: { code?: number }, message: string) => logged.push({ message, code: fields.code }) };
      const stop = scheduleBackups(source, { dir: backups, everyHours: 24, keep: 2 }, log);
      try {
        await vi.waitFor(() => expect(logged.map((l) => l.message)).toContain('backup verified'), { timeout: 30_000, interval: 100 });
      } finally {
        stop();
      }
      expect(readdirSync(backups).filter((n) => n.startsWith('fapiao-'))).toHaveLength(1); // and no lease left behind

      const openKey = join(backups, 'open.key');
      writeFileSync(openKey, randomBytes(32));
      chmodSync(openKey, 0o644);
      const failing = scheduleBackups(source, { dir: join(backups, 'other'), everyHours: 24, keep: 2, keyFile: openKey }, log);
      try {
        await vi.waitFor(() => expect(logged.at(-1)?.code).toBe(5010), { timeout: 30_000, interval: 100 });
      } finally {
        failing();
      }
    });

    it('runs each scheduled backup in a thread of its own at a lower CPU priority; the server thread keeps its own', async () => {
      const ownNice = getPriority();
      const logged: string[] = [];
      const log = { info: (_: object, message: string) => logged.push(message), warn: (_: object, message: string) => logged.push(message) };
      const niceSeen = new Set<number>();
      const watch = setInterval(() => threadNiceValues().forEach((nice) => niceSeen.add(nice)), 2); // runs: the backup is not on this thread
      const stop = scheduleBackups(source, { dir: backups, everyHours: 24, keep: 2, nice: ownNice + 7 }, log);
      try {
        await vi.waitFor(() => expect(logged).toContain('backup verified'), { timeout: 30_000, interval: 100 });
      } finally {
        stop();
        clearInterval(watch);
      }
      expect([...niceSeen]).toContain(ownNice + 7);
      expect(getPriority()).toBe(ownNice);
    });

    it('answers a backup that fails in its thread with the same coded fault', async () => {
      const notADirectory = join(backups, 'a-file');
      writeFileSync(notADirectory, '');
      const failed = await backUpInThread(source, { dir: join(notADirectory, 'backups'), now: new Date() }, 10).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(Fault);
      expect((failed as Fault).code).toBe(5004);
      expect((failed as Fault).message).toContain('a-file');
    });

    it('takes over the lease left by an earlier life of this same process (a restarted container is PID 1 again)', async () => {
      mkdirSync(backups, { recursive: true });
      writeFileSync(join(backups, '.fapiao-backup.lease'), JSON.stringify({ host: hostname(), pid: process.pid, token: 'an earlier life', at: new Date().toISOString() }));
      const logged: string[] = [];
      const log = { info: (_: object, message: string) => logged.push(message), warn: (_: object, message: string) => logged.push(message) };
      const stop = scheduleBackups(source, { dir: backups, everyHours: 24, keep: 2 }, log);
      try {
        await vi.waitFor(() => expect(logged).toContain('backup verified'), { timeout: 30_000, interval: 100 });
      } finally {
        stop();
      }
    });

    it('changes nothing on a dry run', async () => {
      const { path } = await backUp(source, { dir: backups });
      await issueInvoice(ports(), caller, request(99));
      const result = await restore(source, path, { dryRun: true });
      expect(result).toMatchObject({ dryRun: true, verification: { ok: true, invoices: 5 } });
      expect(await store.read.invoices.count(caller.merchantId)).toBe(6);
      expect(await intact(store)).toEqual([]);
      expect(readdirSync(source.dataDir).filter((n) => n.startsWith('.restore') || n.includes('before-restore'))).toEqual([]);
    });

    it('refuses a real restore while the database is in use (5009)', async () => {
      const { path } = await backUp(source, { dir: backups });
      if (kind.name === 'sqlite') {
        // `store` is open on the source, as a running server would be.
        expect(await refusal(restore(source, path, {}))).toBe(5009);
      } else {
        await onPostgres(source.databaseUrl!, async (client) => {
          await client.query('begin');
          await client.query(`lock table ${source.schema}.invoices in access share mode`); // a long transaction of some server
          expect(await refusal(restore(source, path, { lockTimeoutMs: 300 }))).toBe(5009);
          await client.query('rollback');
        });
      }
      expect(await store.read.invoices.count(caller.merchantId)).toBe(5);
    });

    /** Runs `work` with `tool` (a PostgreSQL client program) replaced by a script that fails when its arguments match `when`. */
    const withFailingTool = async <T>(tool: string, when: string, message: string, work: () => Promise<T>): Promise<T> => {
      const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      const bin = mkdtempSync(join(tmpdir(), `fapiao-failing-${tool}-`));
      dirs.push(bin);
      writeFileSync(join(bin, tool), `#!/bin/sh\ncase "$*" in ${when}) echo "${message}" >&2; exit 1;; esac\nexec ${real} "$@"\n`);
      chmodSync(join(bin, tool), 0o755);
      const path0 = process.env.PATH;
      process.env.PATH = `${bin}:${path0}`;
      try {
        return await work();
      } finally {
        process.env.PATH = path0;
      }
    };

    it.runIf(kind.name === 'postgres')('answers 5009 at once when the schema is held, however large the copy (psql stopping first never leaves pg_dump blocked)', async () => {
      // Several megabytes in the schema: more than the pipe between pg_dump and psql holds.
      await onPostgres(source.databaseUrl!, (c) => c.query(`create table ${source.schema}.ballast as select g as id, repeat('填', 200) as filler from generate_series(1, 20000) g`));
      const { path } = await backUp(source, { dir: backups });
      await onPostgres(source.databaseUrl!, async (client) => {
        await client.query('begin');
        await client.query(`lock table ${source.schema}.invoices in access share mode`);
        expect(await refusal(restore(source, path, { lockTimeoutMs: 300 }))).toBe(5009);
        await client.query('rollback');
      });
      expect(await store.read.invoices.count(caller.merchantId)).toBe(5);
    }, 60_000);

    it.runIf(kind.name === 'postgres')('keeps the live schema as it was when the copy cannot be dumped into it (pg_dump refusing a newer server, say)', async () => {
      const { path } = await backUp(source, { dir: backups });
      await issueInvoice(ports(), caller, request(99));
      // pg_dump takes the checks' custom-format dumps but fails the move-in's plain one.
      const refused = await withFailingTool('pg_dump', '*--format=plain*', 'pg_dump: error: aborting because of server version mismatch', () => refusal(restore(source, path, {})));
      expect(refused).toBe(5011);
      expect(await store.read.invoices.count(caller.merchantId)).toBe(6); // nothing dropped, nothing replaced
      expect(await intact(store)).toEqual([]);
    });

    it.runIf(kind.name === 'postgres')('tells a check that could not run (the server refusing pg_restore, say) from a backup that failed it: 5004 and 5011, never 5007', async () => {
      const { path } = await backUp(source, { dir: backups });
      const failing = (work: () => Promise<unknown>) => withFailingTool('pg_restore', '*', 'pg_restore: error: permission denied', () => refusal(work()));
      expect(await failing(() => backUp(source, { dir: backups }))).toBe(5004);
      expect(readdirSync(backups)).toEqual([basename(path)]); // no failed backup left in place
      expect(await failing(() => restore(source, path, { dryRun: true }))).toBe(5011);
      expect(await restore(source, path, { dryRun: true })).toMatchObject({ verification: { ok: true } }); // the backup itself is good
    });

    it('removes what checks and restores killed half-way left a day ago, and nothing newer', async () => {
      const dayAgo = Math.floor(Date.now() / 1000) - 24 * 3600 - 60;
      const left = kind.name === 'sqlite'
        ? [join(source.dataDir, '.restore-killed'), join(source.dataDir, '.restore-running')]
        : [`fapiao_scratch_${dayAgo}_0123456789ab`, `fapiao_scratch_${dayAgo + 3600}_0123456789ab`];
      if (kind.name === 'sqlite') {
        for (const dir of left) mkdirSync(dir);
        utimesSync(left[0]!, dayAgo, dayAgo);
      } else {
        for (const name of left) await onPostgres(source.databaseUrl!, (c) => c.query(`create database ${name}`));
      }
      try {
        const { path } = await backUp(source, { dir: backups });
        await restore(source, path, { dryRun: true });
        const remaining = kind.name === 'sqlite'
          ? left.filter((dir) => existsSync(dir))
          : (await onPostgres(source.databaseUrl!, (c) => c.query<{ name: string }>('select datname as name from pg_database where datname = any($1)', [left]))).rows.map((r) => r.name);
        expect(remaining).toEqual([left[1]]);
      } finally {
        if (kind.name === 'postgres') for (const name of left) await onPostgres(source.databaseUrl!, (c) => c.query(`drop database if exists ${name} with (force)`));
      }
    });

    it.runIf(kind.name === 'postgres')('backs up and restores through a multi-host DATABASE_URL, on the host that takes writes', async () => {
      // The first host is down, as after a failover; libpq's syntax, as docs/deploy.md recommends.
      const hosts = (url: string) => url.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)([^/?#]*)/i, '$1127.0.0.1:1,$2') + `${url.includes('?') ? '&' : '?'}target_session_attrs=read-write`;
      const { manifest, path } = await backUp({ ...source, databaseUrl: hosts(source.databaseUrl!) }, { dir: backups });
      expect(manifest.verification).toMatchObject({ ok: true, invoices: 5 });
      const target = await fresh();
      expect(await restore({ ...target, databaseUrl: hosts(target.databaseUrl!) }, path, {})).toMatchObject({ verification: { ok: true, invoices: 5 } });
      expect(await (await open(target)).read.invoices.count(caller.merchantId)).toBe(5);
      // No host takes writes (both down): refused with 5004, nothing left that looks like a backup.
      const before = readdirSync(backups);
      expect(await refusal(backUp({ ...source, databaseUrl: 'postgres://postgres@127.0.0.1:1,127.0.0.1:2/test?target_session_attrs=read-write' }, { dir: backups }))).toBe(5004);
      expect(readdirSync(backups)).toEqual(before);
    });
  });
}
