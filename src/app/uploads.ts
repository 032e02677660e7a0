// Starts, in one server process, everything that keeps the tax service in step: the upload worker
// (the 'invoice.upload' outbox) and the upkeep loop (number reserve, terms, warnings). Every
// process of every instance runs both; leases in the database keep them from doing work twice.
import type { UploadConfig } from '../config.js';
import type { TaxService } from '../upstream/protocol.js';
import { DEFAULT_RESERVE } from './number-blocks.js';
import { instanceName, type RunnerLog } from './outbox-runner.js';
import type { Ports } from './ports.js';
import { startUploadWorker } from './upload-worker.js';
import { createUpkeep } from './upstream-upkeep.js';

export function startUploads(ports: Ports, taxService: TaxService, config: { upload: UploadConfig }, log: RunnerLog): () => Promise<void> {
  const owner = instanceName();
  const c = config.upload;
  const worker = startUploadWorker(ports, taxService, { owner, idleMs: c.pollMs, backoffMs: c.backoffMs, maxBackoffMs: c.maxBackoffMs, leaseMs: c.leaseMs, log });
  const upkeep = createUpkeep(ports, taxService, { owner, intervalMs: c.upkeepMs, termsMaxAgeMs: c.termsMaxAgeMs, reserve: { ...DEFAULT_RESERVE, floor: c.reserveFloor }, log });
  worker.start();
  upkeep.start();
  return async () => {
    await Promise.all([worker.stop(), upkeep.stop()]);
  };
}
