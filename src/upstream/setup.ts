// Which tax service this Fapiao talks to, and the one client a process uses for it: the real one
// named by FAPIAO_UPSTREAM_URL, or else the sandbox mounted at /sandbox on this very server.
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Store } from '../app/ports.js';
import type { Clock } from '../domain/time.js';
import { createTaxServiceClient, type TaxServiceClient, type TaxServiceClientOptions } from './client.js';
import { storedCredentials } from './credentials.js';

export const SANDBOX_PREFIX = '/sandbox';

export interface UpstreamSetup {
  baseUrl: string;
  /** True when the tax service is the built-in sandbox (no FAPIAO_UPSTREAM_URL). */
  sandbox: boolean;
  /** The sandbox's database file, when this server mounts it. */
  sandboxDbFile: string | undefined;
}

export function upstreamSetup(config: Pick<Config, 'upstreamUrl' | 'host' | 'port' | 'dataDir'>): UpstreamSetup {
  if (config.upstreamUrl) return { baseUrl: config.upstreamUrl, sandbox: false, sandboxDbFile: undefined };
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return { baseUrl: `http://${host}:${config.port}${SANDBOX_PREFIX}`, sandbox: true, sandboxDbFile: join(config.dataDir, 'sandbox-tax-service.db') };
}

/** The process's tax-service client, signing with keys kept in the database. */
export function taxServiceClientFor(setup: UpstreamSetup, store: Store, clock: Clock, options: Omit<TaxServiceClientOptions, 'baseUrl' | 'credentials'> = {}): TaxServiceClient {
  return createTaxServiceClient({ ...options, baseUrl: setup.baseUrl, credentials: storedCredentials(store, setup.baseUrl, clock, { timeoutMs: options.timeoutMs }) });
}

/** The line printed at start-up, so nobody mistakes the sandbox for the tax service. */
export function upstreamBanner(setup: UpstreamSetup, config: Pick<Config, 'databaseUrl'> = { databaseUrl: undefined }): string {
  if (!setup.sandbox) return `税务服务 / Tax service: ${setup.baseUrl}`;
  const banner = `税务服务：内置沙箱（非真实税务系统）/ Tax service: the built-in SANDBOX (not the real tax service) at ${setup.baseUrl}; set FAPIAO_UPSTREAM_URL for a real one`;
  // Instances on other machines would each mount a sandbox of their own and be granted the same
  // numbers: they must share one.
  return config.databaseUrl
    ? `${banner}\n  注意 / NOTE: several instances on one PostgreSQL database must share ONE tax service: run \`fapiao simulator\` once and set FAPIAO_UPSTREAM_URL on every instance`
    : banner;
}
