// Backups as the application runs them (R33): `fapiao backup`, `fapiao restore`, and a schedule
// the server runs. The store copies, checks and restores; this module adds the one check only the
// application can make (the hash chains of every merchant) and the timing.
import { hostname } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Fault, faults } from '../domain/faults.js';
import { systemClock, type Clock } from '../domain/time.js';
import type { StoreConfig } from '../store/database.js';
import {
  applyRetention, createBackup, dialectOf, listBackups, readKeyFile, restoreBackup,
  type BackupOptions, type DataCheck, type RestoreOptions,
} from '../store/backup.js';
import { verifyChains } from './verify-chain.js';
import { holderIsGone, PROCESS_TOKEN, type LeaseHolder } from './process-identity.js';
import { backUpInThread } from './backup-thread.js';

export { applyRetention, dialectOf, readKeyFile };

/** The chain walk of `fapiao chain verify`, run on a restored copy. */
export const checkChains: DataCheck = async (store) => {
  const reports = await verifyChains({ store, clock: systemClock });
  return {
    invoices: reports.reduce((sum, r) => sum + r.invoices, 0),
    auditEntries: reports.reduce((sum, r) => sum + r.auditEntries, 0),
    problems: reports.flatMap((r) => r.breaks.map((b) => `merchant ${b.merchantId}: ${b.chain} chain breaks at ${b.at}: ${b.reason}`)),
  };
};

export function backUp(config: StoreConfig, options: BackupOptions) {
  return createBackup(config, options, checkChains);
}

export function restore(config: StoreConfig, backupDir: string, options: RestoreOptions) {
  return restoreBackup(config, backupDir, options, checkChains);
}

export interface BackupSchedule {
  dir: string;
  everyHours: number;
  /** Verified backups to keep (at least 1 is always kept). */
  keep: number;
  keyFile?: string;
  /** Where to register the backup metrics (the process's prom-client registry). */
  metrics?: Registry;
  clock?: Clock;
  /** The CPU priority (nice) of the thread each backup runs in (backup-thread.ts); default 10. */
  nice?: number;
}

/** pino's shape, so the server passes `app.log`. */
export interface BackupLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

const RETRY_FIRST_MS = 5 * 60_000;
const LEASE_BUSY_RETRY_MS = 10 * 60_000;
/** A lease this old belongs to a process that died without removing it. */
const LEASE_STALE_MS = 12 * 3600_000;
/** setTimeout cannot wait longer than ~24.8 days; a longer wait is taken in steps. */
const LONGEST_TIMER_MS = 24 * 3600_000;
const LEASE_FILE = '.fapiao-backup.lease';
/** A backup's thread runs below the HTTP processes, as the background process does (FAPIAO_BACKGROUND_NICE). */
const DEFAULT_NICE = 10;

/**
 * Backs up whenever the newest verified backup in `dir` is older than `everyHours` (so a restarted
 * server neither backs up at once nor forgets to), then applies retention. A failure is logged
 * with its fault code and retried after 5 min, doubling up to the period. A lease file in `dir`
 * keeps two processes (cluster workers, instances sharing the directory) from backing up at once.
 * Returns a function that stops the schedule; a backup already running finishes.
 */
export function scheduleBackups(config: StoreConfig, schedule: BackupSchedule, log: BackupLog): () => void {
  if (!(schedule.everyHours > 0)) throw new RangeError(`backups every ${schedule.everyHours} hours: give a positive number`);
  const clock = schedule.clock ?? systemClock;
  const period = schedule.everyHours * 3600_000;
  const dialect = dialectOf(config);
  const metrics = schedule.metrics && backupMetrics(schedule.metrics);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  let retryAt = 0;

  /** One check: backs up if due; answers how long to wait before the next check. */
  async function tick(): Promise<number> {
    const now = clock.now().getTime();
    const [newest] = (await listBackups(schedule.dir, dialect)).filter((b) => b.manifest.verification?.ok);
    const due = Math.max(newest ? Date.parse(newest.manifest.createdAt) + period : 0, retryAt);
    if (now < due) return due - now;
    const lease = await takeLease(schedule.dir);
    if (!lease) {
      log.info({ dir: schedule.dir }, 'backup not started: another process holds the backup lease');
      return LEASE_BUSY_RETRY_MS;
    }
    try {
      const key = schedule.keyFile ? readKeyFile(schedule.keyFile) : undefined; // read each time: a rotated key is picked up
      const { path, manifest } = await backUpInThread(config, { dir: schedule.dir, now: clock.now(), ...(key && { key }) }, schedule.nice ?? DEFAULT_NICE);
      const removed = await applyRetention(schedule.dir, dialect, schedule.keep, clock.now());
      failures = 0;
      retryAt = 0;
      metrics?.lastSuccess.set(clock.now().getTime() / 1000);
      log.info({ backup: path, invoices: manifest.verification?.invoices, seconds: manifest.verification?.seconds, removed: removed.length }, 'backup verified');
      return period;
    } catch (error) {
      failures += 1;
      const waitMs = Math.min(period, RETRY_FIRST_MS * 2 ** (failures - 1));
      retryAt = clock.now().getTime() + waitMs;
      const code = error instanceof Fault ? error.code : faults.BACKUP_FAILED.code;
      metrics?.failures.inc({ code: String(code) });
      log.warn({ code, err: error, retryInSeconds: Math.round(waitMs / 1000) }, `backup failed (${code}); will retry`);
      await applyRetention(schedule.dir, dialect, schedule.keep, clock.now()).catch(() => undefined); // drops older failed copies
      return waitMs;
    } finally {
      await lease.release();
    }
  }

  const arm = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(async () => {
      let waitMs = RETRY_FIRST_MS;
      try {
        waitMs = await tick();
      } catch (error) {
        log.warn({ code: faults.BACKUP_FAILED.code, err: error }, 'backup schedule check failed; will retry');
      }
      arm(waitMs);
    }, Math.min(Math.max(ms, 1_000), LONGEST_TIMER_MS));
    timer.unref();
  };

  arm(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function takeLease(dir: string): Promise<{ release(): Promise<void> } | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, LEASE_FILE);
  const mine = JSON.stringify({ host: hostname(), pid: process.pid, token: PROCESS_TOKEN, at: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx', mode: 0o600 });
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!(await leaseIsStale(path))) return undefined;
    await rm(path, { force: true });
  }
  return undefined;
}

async function leaseIsStale(path: string): Promise<boolean> {
  try {
    const lease = JSON.parse(await readFile(path, 'utf8')) as LeaseHolder & { at: string };
    return Date.now() - Date.parse(lease.at) > LEASE_STALE_MS || holderIsGone(lease);
  } catch {
    return true; // unreadable: written by a process that died mid-write
  }
}

function backupMetrics(registry: Registry) {
  return {
    lastSuccess: new Gauge({ name: 'fapiao_backup_last_success_timestamp_seconds', help: 'When the last scheduled backup was verified (Unix time)', registers: [registry] }),
    failures: new Counter({ name: 'fapiao_backup_failures_total', help: 'Scheduled backups that failed, by fault code', labelNames: ['code'], registers: [registry] }),
  };
}
