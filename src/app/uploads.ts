// Starts, in one server process, everything that keeps the tax service in step: the upload worker
// (the 'invoice.upload' outbox), the void worker (the 'invoice.void' outbox) and the upkeep loop (number reserve, terms, warnings). The process
// that does an instance's background work runs both (server.ts); leases in the database keep the
// instances from doing work twice.
import { Counter, type Registry } from 'prom-client';
import type { UploadConfig } from '../config.js';
import type { TaxService } from '../upstream/protocol.js';
import { DEFAULT_RESERVE } from './number-blocks.js';
import type { RunnerLog, RunnerMetrics } from './outbox-runner.js';
import { leaseOwner } from './process-identity.js';
import type { Ports } from './ports.js';
import { startUploadWorker } from './upload-worker.js';
import { startVoidWorker } from './void-worker.js';
import { createUpkeep } from './upstream-upkeep.js';

export function startUploads(ports: Ports, taxService: TaxService, config: { upload: UploadConfig }, log: RunnerLog, registry?: Registry): () => Promise<void> {
  const owner = leaseOwner();
  const c = config.upload;
  const metrics = registry && outboxMetrics(registry);
  const worker = startUploadWorker(ports, taxService, { owner, idleMs: c.pollMs, backoffMs: c.backoffMs, maxBackoffMs: c.maxBackoffMs, leaseMs: c.leaseMs, lanes: c.lanes, batchSize: c.batchSize, log, ...(metrics && { metrics }) });
  const voids = startVoidWorker(ports, taxService, { owner: `${owner}/void`, idleMs: c.pollMs, backoffMs: c.backoffMs, maxBackoffMs: c.maxBackoffMs, log, ...(metrics && { metrics }) });
  const upkeep = createUpkeep(ports, taxService, { owner, intervalMs: c.upkeepMs, termsMaxAgeMs: c.termsMaxAgeMs, reserve: { ...DEFAULT_RESERVE, floor: c.reserveFloor }, log });
  worker.start();
  voids.start();
  upkeep.start();
  return async () => {
    await Promise.all([worker.stop(), voids.stop(), upkeep.stop()]);
  };
}

/** fapiao_outbox_jobs_total{topic,outcome,code}: what became of the jobs each outbox loop claimed. */
export function outboxMetrics(registry: Registry): RunnerMetrics {
  const existing = registry.getSingleMetric('fapiao_outbox_jobs_total') as Counter<'topic' | 'outcome' | 'code'> | undefined;
  const jobs = existing ?? new Counter({ name: 'fapiao_outbox_jobs_total', help: 'Outbox jobs by topic and outcome (done, retry, handled, error batches by fault code)', labelNames: ['topic', 'outcome', 'code'], registers: [registry] });
  return { count: (topic, outcome, n, code) => void (n > 0 && jobs.inc({ topic, outcome, code: code === undefined ? '' : String(code) }, n)) };
}
