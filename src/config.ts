// Settings from the environment, read once at start-up and nowhere else.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** postgres://… switches storage to PostgreSQL (several instances may share it). */
  databaseUrl: string | undefined;
  adminPassword: string | undefined;
  logLevel: string;
  /** Server processes sharing the port and the database; defaults to one per core. */
  workers: number;
  rateLimitPerKey: number | undefined;
  rateLimitPerIp: number | undefined;
  /** Scheduled, verified backups (FAPIAO_BACKUP_DIR set), with retention. */
  backup: { dir: string; everyHours: number; keep: number; keyFile?: string } | undefined;
  /** The tax service (FAPIAO_UPSTREAM_URL); unset = the sandbox mounted at /sandbox on this server. */
  upstreamUrl: string | undefined;
  /** The address people reach this service at, printed in every invoice's QR code (FAPIAO_PUBLIC_URL). */
  publicUrl: string;
  /** Verification requests per minute from one IP address (FAPIAO_VERIFY_PER_IP). */
  verifyPerIpPerMinute: number;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    host: env.HOST ?? '127.0.0.1',
    port: integer(env.PORT, 8080, 'PORT'),
    dataDir: resolve(env.FAPIAO_DATA_DIR ?? 'data'),
    databaseUrl: env.DATABASE_URL || undefined,
    adminPassword: env.FAPIAO_ADMIN_PASSWORD || undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
    workers: integer(env.FAPIAO_WORKERS, availableParallelism(), 'FAPIAO_WORKERS') || 1,
    upstreamUrl: env.FAPIAO_UPSTREAM_URL ? env.FAPIAO_UPSTREAM_URL.replace(/\/+$/, '') : undefined,
    rateLimitPerKey: env.FAPIAO_RATE_LIMIT_PER_KEY ? integer(env.FAPIAO_RATE_LIMIT_PER_KEY, 0, 'FAPIAO_RATE_LIMIT_PER_KEY') : undefined,
    rateLimitPerIp: env.FAPIAO_RATE_LIMIT_PER_IP ? integer(env.FAPIAO_RATE_LIMIT_PER_IP, 0, 'FAPIAO_RATE_LIMIT_PER_IP') : undefined,
    publicUrl: (env.FAPIAO_PUBLIC_URL || `http://${env.HOST ?? '127.0.0.1'}:${env.PORT || 8080}`).replace(/\/+$/, ''),
    verifyPerIpPerMinute: integer(env.FAPIAO_VERIFY_PER_IP, 120, 'FAPIAO_VERIFY_PER_IP') || 120,
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

function positive(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got "${text}"`);
  return value;
}
