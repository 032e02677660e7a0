// Settings from the environment, read once at start-up and nowhere else.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { MAX_RECORDS_PER_UPLOAD } from './upstream/protocol.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** postgres://… switches storage to PostgreSQL (several instances may share it). */
  databaseUrl: string | undefined;
  /** PostgreSQL: prepare the hot statements by name (off behind a pooler that cannot keep them). */
  namedStatements: boolean;
  adminPassword: string | undefined;
  logLevel: string;
  /** Server processes sharing the port and the database; defaults to one per core. */
  workers: number;
  /** The niceness of a cluster's background process (0–19): the counter comes first. */
  backgroundNice: number;
  rateLimitPerKey: number | undefined;
  rateLimitPerIp: number | undefined;
  /** Scheduled, verified backups (FAPIAO_BACKUP_DIR set), with retention. */
  backup: { dir: string; everyHours: number; keep: number; keyFile?: string } | undefined;
  /** The tax service (FAPIAO_UPSTREAM_URL); unset = the sandbox mounted at /sandbox on this server. */
  upstreamUrl: string | undefined;
  /** When set, the sandbox's /admin endpoints need x-sandbox-admin-token with this value (FAPIAO_SANDBOX_ADMIN_TOKEN). */
  sandboxAdminToken: string | undefined;
  /** Uploads, number reserve and the client's patience with the tax service (FAPIAO_UPLOAD_*, FAPIAO_UPSTREAM_*, FAPIAO_NUMBER_*). */
  upload: UploadConfig;
  /** The address people reach this service at, printed in every invoice's QR code (FAPIAO_PUBLIC_URL). */
  publicUrl: string;
  /** Verification requests per minute from one IP address (FAPIAO_VERIFY_PER_IP). */
  verifyPerIpPerMinute: number;
  /** SMTP for emailing invoices to buyers (FAPIAO_SMTP_URL, FAPIAO_MAIL_FROM); unset: no email. */
  mail: { url: string; from: string } | undefined;
  /** Hot-folder printers must lie inside this directory (FAPIAO_PRINT_DIR; default <data dir>/print). */
  printDirectoryRoot: string;
  /** How long a claimed delivery or print job stays with one process (FAPIAO_DELIVERY_LEASE_MS, default 60 s). */
  deliveryLeaseMs: number;
}

export interface UploadConfig {
  /** How often the uploading process looks for invoices to upload when there were none (uploadPollMs). */
  pollMs: number;
  /** First retry delay of a failed upload; doubles up to maxBackoffMs, with jitter. */
  backoffMs: number;
  maxBackoffMs: number;
  /** How long a claimed batch stays with one process before another may take it over. */
  leaseMs: number;
  /** Upload loops per process: one batch travels while the previous one is written down (uploadLanes). */
  lanes: number;
  /** Upload jobs a lane claims, and submits, at most at once (uploadBatchSize). */
  batchSize: number;
  /** How often number reserves, terms and contingency warnings are looked after. */
  upkeepMs: number;
  /** The tax service's terms are fetched again when older than this. */
  termsMaxAgeMs: number;
  /** The least numbers kept in reserve per merchant (more when it issues more than this a day). */
  reserveFloor: number;
  /** Per call to the tax service, and how long the circuit stays open after repeated failures. */
  timeoutMs: number;
  circuitOpenMs: number;
}

/**
 * FAPIAO_UPLOAD_POLL_MS, by default as the database needs. A submission's bookkeeping transaction
 * holds what every issue waits for: on SQLite the one write lock, so small, frequent submissions
 * (100 ms) keep each hold short (bench:issue open loop at 850/s, three alternating pairs: p99 48–67 ms
 * against 72–183 ms at 500 ms). On PostgreSQL it holds the merchant's row lock across a round trip
 * per statement, from every instance's first upload lane (the others join on a backlog), so fewer, larger submissions (500 ms) cost the
 * counter less (bench:issue, 3 instances, 16 clients, two alternating pairs: 319 and 335 invoices/s
 * at 500 ms against 187 and 225 at 100 ms).
 */
function uploadPollMs(env: NodeJS.ProcessEnv): number {
  const fallback = byDatabase(env, { sqlite: 100, postgres: 500 });
  return integer(env.FAPIAO_UPLOAD_POLL_MS, fallback, 'FAPIAO_UPLOAD_POLL_MS') || fallback;
}

/**
 * FAPIAO_UPLOAD_BATCH, 1 to the protocol's 1000 records per submission; by default as the database
 * needs, for the same reason as uploadPollMs. While a backlog drains every submission is full, and
 * on SQLite its claim and its bookkeeping each hold the write lock for about 20 µs a job: 500 halves
 * the longest waits of the issues behind them (bench:drain, three alternating pairs: issuing p99
 * during the drain 43.0, 43.5 and 67.7 ms against 72.2, 89.5 and 93.1 ms at 1000; the drain itself
 * 0.51–0.58 against 0.48–0.56 × the sandbox's ceiling, then measured with two senders).
 * PostgreSQL keeps 1000: fewer submissions, fewer turns on the merchant's row lock.
 */
function uploadBatchSize(env: NodeJS.ProcessEnv): number {
  const size = integer(env.FAPIAO_UPLOAD_BATCH, byDatabase(env, { sqlite: 500, postgres: MAX_RECORDS_PER_UPLOAD }), 'FAPIAO_UPLOAD_BATCH');
  if (size < 1 || size > MAX_RECORDS_PER_UPLOAD) throw new Error(`FAPIAO_UPLOAD_BATCH must be from 1 to ${MAX_RECORDS_PER_UPLOAD}, got "${env.FAPIAO_UPLOAD_BATCH}"`);
  return size;
}

/**
 * FAPIAO_UPLOAD_LANES, upload loops side by side in the uploading process; by default as the database
 * needs. SQLite: 5. Each lane claims, reads, sends, waits and writes down in turn; with more lanes a
 * submission is always at the tax service while the others are in their own steps. bench:drain on 2
 * cores, 2026-12-05, six runs each (alternating pairs, then two more each): with 5 the drain from the
 * heal was 0.71–0.88 of the sandbox's ceiling (median 0.84) against 0.64–1.13 (median 0.68) with 3,
 * and issuing's p99 during the drain 23.6–52.8 ms (median 30.7) against 33.1–44.6 (median 36.5).
 * 4 (one run) and 8 (one run) did no better than 5; with 5 lanes, 250-job submissions drained less
 * (0.55–0.78, three runs) than 500 (0.70–0.90). (On a slower machine, 2026-12-03: 3 lanes drained
 * 7,241/s median against 6,471/s with 2.) PostgreSQL keeps 2: every lane of every instance takes its
 * turn on the merchant's row lock, and a third was not measured there.
 */
function uploadLanes(env: NodeJS.ProcessEnv): number {
  const lanes = integer(env.FAPIAO_UPLOAD_LANES, byDatabase(env, { sqlite: 5, postgres: 2 }), 'FAPIAO_UPLOAD_LANES');
  if (lanes < 1 || lanes > MAX_UPLOAD_LANES) throw new Error(`FAPIAO_UPLOAD_LANES must be from 1 to ${MAX_UPLOAD_LANES}, got "${env.FAPIAO_UPLOAD_LANES}"`);
  return lanes;
}

/** Each lane holds a database connection while it writes down (PostgreSQL's pool has 10): more would starve issuing. */
const MAX_UPLOAD_LANES = 8;

/** A default that depends on the database DATABASE_URL chooses (none: the embedded SQLite). */
function byDatabase<T>(env: NodeJS.ProcessEnv, defaults: { sqlite: T; postgres: T }): T {
  return env.DATABASE_URL ? defaults.postgres : defaults.sqlite;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    host: env.HOST ?? '127.0.0.1',
    port: integer(env.PORT, 8080, 'PORT'),
    dataDir: resolve(env.FAPIAO_DATA_DIR ?? 'data'),
    databaseUrl: env.DATABASE_URL || undefined,
    namedStatements: onOff(env.FAPIAO_PG_NAMED_STATEMENTS, true, 'FAPIAO_PG_NAMED_STATEMENTS'),
    adminPassword: env.FAPIAO_ADMIN_PASSWORD || undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
    workers: integer(env.FAPIAO_WORKERS, availableParallelism(), 'FAPIAO_WORKERS') || 1,
    backgroundNice: Math.min(19, integer(env.FAPIAO_BACKGROUND_NICE, 10, 'FAPIAO_BACKGROUND_NICE')),
    upstreamUrl: env.FAPIAO_UPSTREAM_URL ? env.FAPIAO_UPSTREAM_URL.replace(/\/+$/, '') : undefined,
    sandboxAdminToken: env.FAPIAO_SANDBOX_ADMIN_TOKEN || undefined,
    upload: {
      pollMs: uploadPollMs(env),
      backoffMs: integer(env.FAPIAO_UPLOAD_BACKOFF_MS, 1_000, 'FAPIAO_UPLOAD_BACKOFF_MS') || 1_000,
      maxBackoffMs: integer(env.FAPIAO_UPLOAD_MAX_BACKOFF_MS, 60_000, 'FAPIAO_UPLOAD_MAX_BACKOFF_MS') || 60_000,
      leaseMs: integer(env.FAPIAO_UPLOAD_LEASE_MS, 120_000, 'FAPIAO_UPLOAD_LEASE_MS') || 120_000,
      lanes: uploadLanes(env),
      batchSize: uploadBatchSize(env),
      upkeepMs: integer(env.FAPIAO_UPKEEP_INTERVAL_MS, 30_000, 'FAPIAO_UPKEEP_INTERVAL_MS') || 30_000,
      termsMaxAgeMs: integer(env.FAPIAO_TERMS_REFRESH_MS, 600_000, 'FAPIAO_TERMS_REFRESH_MS') || 600_000,
      reserveFloor: integer(env.FAPIAO_NUMBER_RESERVE_MIN, 1_000, 'FAPIAO_NUMBER_RESERVE_MIN') || 1_000,
      timeoutMs: integer(env.FAPIAO_UPSTREAM_TIMEOUT_MS, 10_000, 'FAPIAO_UPSTREAM_TIMEOUT_MS') || 10_000,
      circuitOpenMs: integer(env.FAPIAO_UPSTREAM_CIRCUIT_OPEN_MS, 30_000, 'FAPIAO_UPSTREAM_CIRCUIT_OPEN_MS') || 30_000,
    },
    rateLimitPerKey: env.FAPIAO_RATE_LIMIT_PER_KEY ? integer(env.FAPIAO_RATE_LIMIT_PER_KEY, 0, 'FAPIAO_RATE_LIMIT_PER_KEY') : undefined,
    rateLimitPerIp: env.FAPIAO_RATE_LIMIT_PER_IP ? integer(env.FAPIAO_RATE_LIMIT_PER_IP, 0, 'FAPIAO_RATE_LIMIT_PER_IP') : undefined,
    publicUrl: publicUrl(env),
    verifyPerIpPerMinute: integer(env.FAPIAO_VERIFY_PER_IP, 120, 'FAPIAO_VERIFY_PER_IP') || 120,
    mail: env.FAPIAO_SMTP_URL ? { url: env.FAPIAO_SMTP_URL, from: env.FAPIAO_MAIL_FROM || 'Fapiao <noreply@fapiao.local>' } : undefined,
    printDirectoryRoot: env.FAPIAO_PRINT_DIR ? resolve(env.FAPIAO_PRINT_DIR) : resolve(env.FAPIAO_DATA_DIR ?? 'data', 'print'),
    deliveryLeaseMs: integer(env.FAPIAO_DELIVERY_LEASE_MS, 60_000, 'FAPIAO_DELIVERY_LEASE_MS') || 60_000,
    backup: env.FAPIAO_BACKUP_DIR
      ? {
          dir: resolve(env.FAPIAO_BACKUP_DIR),
          everyHours: positive(env.FAPIAO_BACKUP_EVERY_HOURS, 24, 'FAPIAO_BACKUP_EVERY_HOURS'),
          keep: integer(env.FAPIAO_BACKUP_KEEP, 7, 'FAPIAO_BACKUP_KEEP') || 1,
          ...(env.FAPIAO_BACKUP_KEY_FILE && { keyFile: resolve(env.FAPIAO_BACKUP_KEY_FILE) }),
        }
      : undefined,
  };
}

function integer(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, got "${text}"`);
  return value;
}

function onOff(text: string | undefined, fallback: boolean, name: string): boolean {
  if (text === undefined || text === '') return fallback;
  if (text === 'on' || text === 'off') return text === 'on';
  throw new Error(`${name} must be on or off, got "${text}"`);
}

function positive(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got "${text}"`);
  return value;
}

/**
 * Printed in every invoice's QR code, so it must be an address buyers can reach: a wildcard listen
 * address (HOST=0.0.0.0) is none, and a QR code on a delivered invoice cannot be corrected later.
 */
function publicUrl(env: NodeJS.ProcessEnv): string {
  const given = env.FAPIAO_PUBLIC_URL;
  if (given) {
    let url: URL | undefined;
    try {
      url = new URL(given);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new Error(`FAPIAO_PUBLIC_URL must be an http(s) address, got "${given}"`);
    return given.replace(/\/+$/, '');
  }
  const host = env.HOST ?? '127.0.0.1';
  if (['0.0.0.0', '::', '[::]'].includes(host)) {
    throw new Error(`FAPIAO_PUBLIC_URL must be set when HOST=${host}: it is printed in every invoice's QR code, and ${host} is no address a buyer can reach (e.g. FAPIAO_PUBLIC_URL=https://fapiao.example.com)`);
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${env.PORT || 8080}`;
}

