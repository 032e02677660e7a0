// `fapiao serve` / `npm start`: prepare the store (migrations, a first login), then serve HTTP
// until told to stop — from one process per core (FAPIAO_WORKERS), all sharing the port and the
// database, so a month-end peak uses the whole machine.
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Config } from './config.js';
import { openSigner } from './app/signing-keys.js';
import { join } from 'node:path';
import { migrateDatabase, openStore, sqliteFile } from './store/database.js';
import { startWalCheckpointer } from './store/wal-checkpoints.js';
import { buildApp } from './http/app.js';
import { argon2Hasher, type PasswordHasher } from './security/passwords.js';
import { shanghaiTimestamp, systemClock } from './domain/time.js';
import { addMerchant } from './app/merchants.js';
import { addUser } from './app/users.js';
import { purgeExpired } from './app/housekeeping.js';
import type { Ports } from './app/ports.js';
import { createMetrics, sqliteCommitMetrics, type CommitRole } from './ops/metrics.js';
import { clusterMetricsSource, serveClusterMetrics } from './ops/cluster-metrics.js';
import { announceStarted, superviseWorkers, workerRole } from './ops/supervisor.js';
import { niceOutsideWriteLock } from './ops/lock-priority.js';
import { scheduleBackups } from './app/backups.js';

import { scheduleReconciliation } from './app/reconcile.js';
import { endLeasesOfGoneProcesses, leaseOwner } from './app/process-identity.js';
import { registerUpstreamMetrics } from './upstream/metrics.js';
import { startUploads } from './app/uploads.js';
import { taxServiceClientFor, upstreamBanner, upstreamSetup } from './upstream/setup.js';
import { startDeliveryWorkers } from './documents/delivery-workers.js';
import { PdfCache } from './documents/pdf-cache.js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Metrics } from './ops/metrics.js';
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from './http/context.js';
import type { RunnerLog } from './app/outbox-runner.js';
import type { UpstreamSetup } from './upstream/setup.js';
import type { TaxServiceClient } from './upstream/client.js';
import type { InvoiceSigner } from './app/document-ports.js';

/** The primary has no HTTP logger of its own; it writes the same JSON lines. */
const logLine = (level: number) => (fields: object, msg: string) => {
  const errors = (_key: string, value: unknown) => (value instanceof Error ? { type: value.name, message: value.message } : value);
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, ...fields, msg }, errors)}\n`);
};
const primaryLog = { info: logLine(30), warn: logLine(40) };

const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;
/** While the HTTP server closes, how often connections that have become idle are closed. */
const CLOSE_IDLE_EVERY_MS = 100;

/** A demo merchant with a valid USCC, so a fresh install can issue straight away. */
const DEMO_MERCHANT = { name: '示例商贸有限公司（演示）', taxId: '91350100M000100Y43', regionCode: '35', address: '福建省福州市鼓楼区示例路1号', phone: '0591-88888888' };

/**
 * What a process does. With one process (FAPIAO_WORKERS=1) it does everything. With more, the
 * primary forks FAPIAO_WORKERS processes that serve HTTP and one that works in the background
 * (uploads, number reserves, reconciliation, deliveries, housekeeping) at a lower CPU priority, so a
 * backlog draining or a batch of PDFs rendering never slows the counter (R30, R36).
 */
interface Role {
  http: boolean;
  background: boolean;
}
const commitRole = (role: Role): CommitRole => (role.http && role.background ? 'both' : role.http ? 'http' : 'background');
const HTTP_ONLY: Role = { http: true, background: false };
const BACKGROUND_ONLY: Role = { http: false, background: true };

export async function serve(config: Config): Promise<void> {
  if (cluster.isWorker) return runProcess(config, workerRole() === 'background' ? BACKGROUND_ONLY : HTTP_ONLY, false);
  await migrateDatabase(config);
  await withPorts(config, (ports) => ensureSomeoneCanLogIn(ports, config));
  process.stdout.write(`${upstreamBanner(upstreamSetup(config), config)}\n`);
  if (config.workers <= 1) return runProcess(config, { http: true, background: true }, true);
  runPrimary(config);
}

function runPrimary(config: Config): void {
  // The primary's own metrics (its backups, its restarts), summed into /metrics with the workers'.
  const registry = new Registry();
  serveClusterMetrics(registry);
  const stopBackups = config.backup ? scheduleBackups(config, { ...config.backup, metrics: registry, nice: config.backgroundNice }, primaryLog) : () => {};
  superviseWorkers({ httpProcesses: config.workers, registry, stopOwnWork: stopBackups });
}

async function runProcess(config: Config, role: Role, alone: boolean): Promise<void> {
  const metrics = createMetrics();
  // A process that answers no request is niced, but holds SQLite's write lock at normal priority when it may.
  const lockHold = role.http ? undefined : niceOutsideWriteLock(config.backgroundNice);
  const store = await openStore(config, {
    migrate: false, ...(!config.databaseUrl && { commits: sqliteCommitMetrics(metrics.registry, commitRole(role)), ...(lockHold && { lockHold }) }),
  });
  const signer = await openSigner(store, systemClock, config.dataDir); // R22: created on first start
  const ports = { store, clock: systemClock, passwords: argon2Hasher(), signer, printDirectoryRoot: config.printDirectoryRoot, emailEnabled: config.mail !== undefined };
  if (!alone) metrics.render = clusterMetricsSource(metrics.registry);
  // The tax service: FAPIAO_UPSTREAM_URL, or the sandbox this server mounts at /sandbox.
  const upstream = upstreamSetup(config);
  const taxService = taxServiceClientFor(upstream, store, systemClock, { timeoutMs: config.upload.timeoutMs, openMs: config.upload.circuitOpenMs });
  const app = role.http ? await serveHttp(config, ports, metrics, upstream, taxService, role.background) : undefined;
  const log: RunnerLog = app?.log ?? pino({ level: config.logLevel, base: { pid: process.pid, role: 'background' } });
  const stopBackground = role.background ? startBackgroundWork(config, ports, taxService, metrics.registry, log, alone) : async () => {};

  // One stop, whatever asks first: SIGTERM from the primary, SIGINT from a terminal (it reaches
  // every process of the group), the primary gone.
  let stopping: Promise<void> | undefined;
  const stop = (reason: string) => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down');
      await stopBackground();
      if (app) await closeHttp(app);
      await store.close();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        log.warn({ err: error }, 'shutting down failed');
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second SIGTERM (systemd signals every process of the service, then the
  // primary passes one on) must not kill a worker that is finishing its requests.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (alone) return;
  // A worker whose primary is gone (even by kill -9) must not linger holding connections.
  process.once('disconnect', () => stop('primary gone'));
  announceStarted();
}

/**
 * Stops taking connections and answers the requests in flight. Fastify's close closes the
 * connections idle at that moment; one whose request was in flight would, once answered, stay
 * open for the client's next request (keep-alive: a proxy keeps its connections) until it timed out
 * after 72 s, past the primary's bound, so each is closed as soon as it is idle.
 */
async function closeHttp(app: FastifyInstance): Promise<void> {
  const closeIdle = setInterval(() => app.server.closeIdleConnections(), CLOSE_IDLE_EVERY_MS);
  try {
    await app.close();
  } finally {
    clearInterval(closeIdle);
  }
}

/** `uploadsHere`: this process also uploads, so its client's circuit breaker is worth reporting. */
async function serveHttp(config: Config, ports: HttpContext['ports'], metrics: Metrics, upstream: UpstreamSetup, taxService: TaxServiceClient, uploadsHere: boolean) {
  const app = await buildApp(
    ports,
    {
      logger: { level: config.logLevel },
      ...(config.rateLimitPerKey !== undefined && { rateLimitPerKey: config.rateLimitPerKey }),
      ...(config.rateLimitPerIp !== undefined && { rateLimitPerIp: config.rateLimitPerIp }),
      taxService,
      ...(uploadsHere && { uploadCircuit: () => taxService.circuit().state }),
      ...(upstream.sandboxDbFile && { sandbox: { dbFile: upstream.sandboxDbFile, ...(config.sandboxAdminToken && { adminToken: config.sandboxAdminToken }) } }),
      documents: { publicUrl: config.publicUrl, pdfCacheDir: join(config.dataDir, 'pdf-cache'), verifyPerIpPerMinute: config.verifyPerIpPerMinute },
    },
    metrics,
  );
  await app.listen({ host: config.host, port: config.port });
  app.log.info({ upstream: upstream.baseUrl, sandbox: upstream.sandbox }, upstreamBanner(upstream));
  return app;
}

/** Everything that is not answering a request. Returns how to stop it. */
function startBackgroundWork(config: Config, ports: Ports & { signer: InvoiceSigner }, taxService: TaxServiceClient, registry: Registry, log: RunnerLog, alone: boolean): () => Promise<void> {
  const deliveryPdfs = new PdfCache({ publicUrl: config.publicUrl, dir: join(config.dataDir, 'pdf-cache') });
  // Uploads and number reserves (R30): the outbox is shared by lease, so any number of instances
  // may run this; upkeep tops up numbers, refreshes terms and warns near the offline limits.
  // A background process restarted after a crash takes over its predecessor's leases at once
  // instead of waiting out their terms (uploads 2 min, upkeep 2 min, reconciliation 30 min).
  endLeasesOfGoneProcesses(ports, shanghaiTimestamp(ports.clock.now())).then(
    (ended) => ended.leases > 0 && log.info(ended, 'leases of processes that are gone ended'),
    (error: unknown) => log.warn({ err: error }, 'could not end the leases of processes that are gone; they run out by themselves'),
  );
  const stopUploads = startUploads({ ...ports }, taxService, config, log, registry);
  // Every instance ticks; a lease in the database lets one of them reconcile yesterday.
  const stopReconciliation = scheduleReconciliation({ ...ports, taxService }, leaseOwner(), log, { metrics: registry });
  registerUpstreamMetrics(registry, taxService);
  // Backups run once per machine: here when this is the only process, else in the primary.
  const stopBackups = alone && config.backup ? scheduleBackups(config, { ...config.backup, metrics: registry, nice: config.backgroundNice }, log) : () => {};
  // Deliveries and printing (R11, R21): fan-out of issued invoices, webhooks, email, print jobs.
  const stopDeliveries = startDeliveryWorkers(ports, { renderPdf: (invoice) => deliveryPdfs.pdfFor(invoice), ...(config.mail && { mail: config.mail }), log, registry, leaseMs: config.deliveryLeaseMs });
  // SQLite's WAL is checkpointed here, off every process's event loop (wal-checkpoints.ts).
  const checkpoints = ports.store.dialect === 'sqlite'
    ? startWalCheckpointer(sqliteFile(config.dataDir), (message) => log.warn({ error: message }, 'WAL checkpoint failed; SQLite checkpoints by itself past its backstop'))
    : undefined;
  const stopping = new AbortController(); // a purge of many slices stops between two at shutdown
  const housekeeping = setInterval(() => {
    purgeExpired(ports, stopping.signal).then(
      (purged) => log.info({ purged }, 'housekeeping'),
      (error) => log.warn({ err: error }, 'housekeeping failed; will retry'),
    );
    deliveryPdfs.prune().then((pdfs) => pdfs && log.info({ pdfs }, 'pdf cache pruned'), () => {});
  }, HOUSEKEEPING_INTERVAL_MS);
  housekeeping.unref();
  return async () => {
    clearInterval(housekeeping);
    stopping.abort();
    stopBackups();
    stopReconciliation();
    await stopUploads();
    await stopDeliveries();
    await checkpoints?.stop();
  };
}

async function withPorts(config: Config, work: (ports: Ports & { passwords: PasswordHasher }) => Promise<void>): Promise<void> {
  const store = await openStore(config, { migrate: false });
  try {
    await work({ store, clock: systemClock, passwords: argon2Hasher() });
  } finally {
    await store.close();
  }
}

async function ensureSomeoneCanLogIn(ports: Ports & { passwords: PasswordHasher }, config: Config): Promise<void> {
  if ((await ports.store.read.merchants.list()).length > 0) return;
  const merchant = await addMerchant(ports, DEMO_MERCHANT, 'first-start');
  const password = config.adminPassword ?? randomBytes(12).toString('base64url');
  await addUser(ports, { merchantId: merchant.id, username: 'admin', password, role: 'owner', actor: 'first-start' });
  const shown = config.adminPassword ? '(the value of FAPIAO_ADMIN_PASSWORD)' : password;
  process.stdout.write(
    [
      '',
      '首次启动：已创建演示商户和管理员账户 / First start: a demo merchant and an owner account were created',
      `  merchant: ${merchant.name} (${merchant.id})`,
      `  user:     admin`,
      `  password: ${shown}   ← shown once; change it after logging in (PUT /api/v1/session/password)`,
      `  log in:   POST http://${config.host}:${config.port}/api/v1/session {"username":"admin","password":"…"}`,
      '',
    ].join('\n') + '\n',
  );
}
