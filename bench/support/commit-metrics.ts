// The SQLite group commits a server has counted so far (its /metrics: fapiao_sqlite_commit_*), for
// the benchmarks to tell, between two readings, how long commits waited for the write lock and held
// it. A cluster's /metrics sums its processes; `role` picks the processes doing one kind of work
// (the HTTP processes issue, the background one uploads), every role when left out.
import type { CommitRole } from '../../src/ops/metrics.js';

/** Lock waits longer than this are counted apart (a bucket bound of the histogram, in seconds). */
export const LONG_LOCK_WAIT_SECONDS = 0.01;

export interface CommitTotals {
  commits: number;
  units: number;
  /** Seconds, summed over the commits. */
  lockWait: number;
  transaction: number;
  durable: number;
  /** Commits that waited longer than LONG_LOCK_WAIT_SECONDS for the lock. */
  longLockWaits: number;
}

/** The /metrics text of each server, read once per reading whatever is taken from it. */
export async function scrapeMetrics(baseUrls: readonly string[]): Promise<string[]> {
  return Promise.all(baseUrls.map(async (baseUrl) => {
    const response = await fetch(`${baseUrl}/metrics`);
    const text = await response.text();
    if (!response.ok) throw new Error(`${baseUrl}/metrics answered ${response.status}: ${text.slice(0, 200)}`);
    return text;
  }));
}

export function commitTotals(scraped: readonly string[], role?: CommitRole): CommitTotals {
  const totals: CommitTotals = { commits: 0, units: 0, lockWait: 0, transaction: 0, durable: 0, longLockWaits: 0 };
  const longBound = `le="${LONG_LOCK_WAIT_SECONDS}"`;
  for (const text of scraped) {
    const lines = text.split('\n').filter((line) => line.startsWith('fapiao_sqlite_commit_') && (role === undefined || line.includes(`role="${role}"`)));
    /** The sum of the series named `name` with every label in `labels`. */
    const value = (name: string, ...labels: string[]) =>
      lines.filter((line) => line.startsWith(`${name}{`) && labels.every((label) => line.includes(label))).reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const lockWaits = value('fapiao_sqlite_commit_phase_seconds_count', 'phase="lock_wait"');
    if (lockWaits > 0 && !lines.some((line) => line.includes('phase="lock_wait"') && line.includes(longBound))) {
      throw new Error(`/metrics has no lock_wait bucket ${longBound}: LONG_LOCK_WAIT_SECONDS must be one of the histogram's bounds`);
    }
    totals.commits += value('fapiao_sqlite_commit_batch_units_count');
    totals.units += value('fapiao_sqlite_commit_batch_units_sum');
    totals.lockWait += value('fapiao_sqlite_commit_phase_seconds_sum', 'phase="lock_wait"');
    totals.transaction += value('fapiao_sqlite_commit_phase_seconds_sum', 'phase="transaction"');
    totals.durable += value('fapiao_sqlite_commit_phase_seconds_sum', 'phase="durable"');
    totals.longLockWaits += lockWaits - value('fapiao_sqlite_commit_phase_seconds_bucket', 'phase="lock_wait"', longBound);
  }
  return totals;
}

/**
 * Per commit, between two readings: how many there were a second, their mean phases in ms and
 * units, the share of commits that waited long for the lock, and the share of the time the lock
 * was held (the transactions' time over the seconds between the readings).
 */
export function perCommit(before: CommitTotals, after: CommitTotals, seconds: number) {
  const commits = after.commits - before.commits;
  const mean = (field: 'lockWait' | 'transaction' | 'durable') => (commits ? ((after[field] - before[field]) / commits) * 1000 : NaN);
  return {
    commitsPerSecond: commits / seconds,
    lockWaitMs: mean('lockWait'),
    transactionMs: mean('transaction'),
    durableMs: mean('durable'),
    units: commits ? (after.units - before.units) / commits : NaN,
    longLockWaitShare: commits ? (after.longLockWaits - before.longLockWaits) / commits : NaN,
    lockHeldShare: (after.transaction - before.transaction) / seconds,
  };
}
