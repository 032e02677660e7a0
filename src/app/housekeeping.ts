// Periodic clean-up. Idempotency keys are kept for 48 hours (the promise is at least 24), expired
// sessions are removed, and so are the stored records of uploaded invoices. Safe to run on every
// instance at once: all are plain deletes.
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import type { Ports } from './ports.js';

export const IDEMPOTENCY_KEY_RETENTION_HOURS = 48;

/** Upload records looked at per transaction, so the purge never holds SQLite's write lock for long. */
export const UPLOAD_RECORD_SLICE = 1_000;
/** Pause between slices, so issuing gets the lock in between. */
const SLICE_PAUSE_MS = 10;

export async function purgeExpired(ports: Ports, signal?: AbortSignal): Promise<{ idempotencyKeys: number; sessions: number; verificationCounts: number; uploadRecords: number }> {
  const now = ports.clock.now();
  const keyCutoff = shanghaiTimestamp(new Date(now.getTime() - IDEMPOTENCY_KEY_RETENTION_HOURS * 3600_000));
  const idempotencyKeys = await ports.store.write((tx) => tx.idempotency.purgeBefore(keyCutoff));
  const sessions = await ports.store.write((tx) => tx.sessions.purgeExpired(shanghaiTimestamp(now)));
  // Verification counters matter for their own day only (5 per invoice per day); yesterday's stay a day.
  const verificationCounts = await ports.store.write((tx) => tx.verification.purgeBefore(shanghaiDate(new Date(now.getTime() - 24 * 3600_000))));
  const uploadRecords = await purgeUploadRecords(ports, signal);
  return { idempotencyKeys, sessions, verificationCounts, uploadRecords };
}

/**
 * An upload's record is only needed until the tax service has it. Deleting it in the transaction
 * that completes the job was half of what a drain of a long backlog wrote to SQLite's WAL, under
 * its write lock (docs/architecture.md, Uploads and contingency), so it is deleted here instead.
 */
async function purgeUploadRecords(ports: Ports, signal?: AbortSignal): Promise<number> {
  // A window of records at a time, done or not, so a job pending for days (the tax service
  // refusing it, a merchant long offline) holds back no other record and no slice scans far.
  let purged = 0;
  for (let after = 0; !signal?.aborted; ) {
    const { deleted, next } = await ports.store.write((tx) => tx.uploads.purgeRecords(after, UPLOAD_RECORD_SLICE));
    purged += deleted;
    if (next === null) break;
    after = next;
    await new Promise((resolve) => setTimeout(resolve, SLICE_PAUSE_MS));
  }
  return purged;
}
