// The upload of issued invoices to the tax service (R30): the 'invoice.upload' outbox jobs, claimed
// by lease (outbox-runner.ts), grouped per seller into submissions of at most 1000 records.
// Exactly-once in effect:
//   - an attempt whose outcome is unknown (timeout, lost answer, a process killed mid-upload, a lease
//     taken over) leaves the job's attempt counted; such a job is resolved by a status query before
//     anything is sent again. An attempt that certainly did not reach the tax service (refused
//     connection, 5xx, flow control, a record answered 'failed') gives its attempt back;
//   - 'accepted' and 'duplicate' (same digest) both mean uploaded;
//   - 'conflict' (the tax service holds another digest) quarantines the invoice: nothing is
//     overwritten, our version stays, theirs is recorded beside it, and an alert is raised;
//   - 'rejected' marks the invoice rejected with the tax service's reason, and the view says what to do.
// Each outcome is written in ONE transaction with the completion of the job, and only for jobs this
// process still holds: a job another process took over is finished by that one alone.
import { faults } from '../domain/faults.js';
import type { InvoiceKind } from '../domain/invoice.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { encodeUploadRecord, MAX_RECORDS_PER_UPLOAD, type EncodedUploadRecord, type InvoiceStatusAnswer, type TaxService, type UploadOutcome, type UploadRecord } from '../upstream/protocol.js';
import { raiseAlert } from './alerts.js';
import type { AuditRecord } from './audit.js';
import { recordFacts, uploadRecord } from './upload-record.js';
import type { UploadRecordFacts } from './upload-ports.js';
import { createOutboxRunner, DEFAULT_IDLE_MS, type BatchResult, type Lease, type OutboxHandler, type OutboxRunner, type RunnerOptions } from './outbox-runner.js';
import { leaseOwner } from './process-identity.js';
import type { OutboxJob, Ports } from './ports.js';
import { appendAuditEntries, byMerchant, certainlyNotProcessed, eachGroup, circuitNotBefore, merchantCache, noteReach, retryDelayMs } from './upstream-jobs.js';

export const UPLOAD_TOPIC = 'invoice.upload';

type Verdict =
  | { kind: 'uploaded' }
  | { kind: 'rejected'; reasonCode: string | null; reason: string }
  | { kind: 'quarantined'; heldDigest: string | null; record: unknown }
  | { kind: 'failed' } // certainly not processed: try again, no status query needed
  | { kind: 'unknown' }; // may have been processed: status query before any resend

/** A job's record as it is sent, with what its outcome changes. */
type Sendable = EncodedUploadRecord & UploadRecordFacts;

function sendable(record: UploadRecord): Sendable {
  return { ...encodeUploadRecord(record), ...recordFacts(record) };
}

export function uploadHandler(ports: Ports, taxService: TaxService, options: RunnerOptions = {}): OutboxHandler {
  const merchantOf = merchantCache(ports);
  const backoffMs = options.backoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;

  /**
   * What each job uploads, by invoice number: the record stored with it when the invoice was issued,
   * sent as stored, else (jobs enqueued by an earlier version) the record built from the stored
   * invoice. A job whose invoice is gone has none.
   */
  async function recordsOf(merchantId: string, jobs: OutboxJob[]): Promise<Map<string, Sendable>> {
    const records = new Map<string, Sendable>();
    const stored = new Map((await ports.store.read.uploads.records(merchantId, jobs.map((j) => j.id))).map((r) => [r.jobId, r]));
    const without: string[] = [];
    for (const job of jobs) {
      const record = stored.get(job.id);
      if (record) records.set(job.subject, { number: job.subject, wire: record.wire, kind: record.kind, preTaxFen: record.preTaxFen, digest: record.digest });
      else without.push(job.subject);
    }
    for (const slice of slices(without)) {
      for (const invoice of await ports.store.read.uploads.invoices(merchantId, slice)) records.set(invoice.number, sendable(uploadRecord(invoice)));
      await yieldToLoop();
    }
    return records;
  }

  /** One submission per seller and at most 1000 jobs; a failed one has given its jobs back already. */
  function handle(jobs: OutboxJob[], lease: Lease): Promise<BatchResult> {
    const submissions = [...byMerchant(jobs)].flatMap(([merchantId, group]) => slices(group, MAX_RECORDS_PER_UPLOAD).map((part): [string, OutboxJob[]] => [merchantId, part]));
    return eachGroup(submissions, (merchantId, part) => uploadGroup(merchantId, part, lease));
  }

  /** Uploads one seller's jobs; returns the flow-control pause the tax service asked for (ms). */
  async function uploadGroup(merchantId: string, jobs: OutboxJob[], lease: Lease): Promise<number> {
    const merchant = await merchantOf(merchantId);
    const records = await recordsOf(merchantId, jobs);
    const verdicts = new Map<number, Verdict>();
    const orphans = jobs.filter((j) => !merchant || !records.has(j.subject));
    for (const job of orphans) verdicts.set(job.id, { kind: 'uploaded' }); // nothing to upload: an upload job always has its invoice; never retry forever
    const live = jobs.filter((j) => !verdicts.has(j.id));
    if (!merchant || live.length === 0) {
      await finish(merchantId, jobs, verdicts, records, lease);
      return 0;
    }

    let waitSeconds = 0;
    try {
      // 1. Attempts whose outcome is unknown are resolved by a status query first, all of the
      // submission's in one call (after an outage, the circuit's probe). A query per job kept a lane
      // from uploading for over a second after the tax service came back, 500 queries at 16 at once
      // (bench:drain, 2026-12-05).
      const unresolved = live.filter((j) => j.attempts > 1);
      const answers = unresolved.length > 0 ? await taxService.statuses(merchant.taxId, unresolved.map((j) => j.subject)) : [];
      for (const [i, job] of unresolved.entries()) {
        const verdict = fromStatus(answers[i]!, records.get(job.subject)!.digest);
        if (verdict) verdicts.set(job.id, verdict);
      }
      // 2. Everything not settled by a status answer is submitted, once.
      const toSend = live.filter((j) => !verdicts.has(j.id));
      if (toSend.length > 0) {
        const answer = await taxService.upload(merchant.taxId, toSend.map((j) => records.get(j.subject)!));
        waitSeconds = answer.waitSeconds;
        const outcomes = new Map(answer.outcomes.map((o) => [o.number, o]));
        for (const job of toSend) verdicts.set(job.id, fromOutcome(outcomes.get(job.subject)));
      }
    } catch (error) {
      const notProcessed = certainlyNotProcessed(error);
      // Jobs settled by status answers keep their verdicts; the rest wait for the next round.
      for (const job of live) if (!verdicts.has(job.id)) verdicts.set(job.id, notProcessed ? { kind: 'failed' } : { kind: 'unknown' });
      await finish(merchantId, jobs, verdicts, records, lease, error);
      throw error;
    }
    await finish(merchantId, jobs, verdicts, records, lease);
    return Math.max(0, waitSeconds) * 1000;
  }

  /**
   * Writes the verdicts of one submission (≤ 1000 jobs) in ONE transaction, for the jobs this process
   * still holds: one commit instead of five let bench:drain drain about a fifth faster. On SQLite the
   * write lock is held, and the process's event loop blocked, for tens of milliseconds; in a cluster
   * that is the background process's loop (server.ts), in a single-process server every request waits.
   */
  async function finish(
    merchantId: string, jobs: OutboxJob[], verdicts: Map<number, Verdict>, records: Map<string, Sendable>, lease: Lease, error?: unknown,
  ): Promise<void> {
    const settled = jobs.filter((j) => ['uploaded', 'rejected', 'quarantined'].includes(verdicts.get(j.id)?.kind ?? ''));
    const failed = jobs.filter((j) => verdicts.get(j.id)?.kind === 'failed');
    const unknown = jobs.filter((j) => verdicts.get(j.id)?.kind === 'unknown');
    const maxAttempts = Math.max(1, ...failed.map((j) => j.attempts), ...unknown.map((j) => j.attempts));
    const retryAt = shanghaiTimestamp(new Date(ports.clock.now().getTime() + retryDelayMs(error, maxAttempts, { backoffMs, maxBackoffMs })));
    await ports.store.write(async (tx) => {
      const at = shanghaiTimestamp(ports.clock.now());
      // The jobs are this process's, by lease: nothing else of the merchant's writes them, so they are
      // completed before its lock is asked for, and every issue waits that much less.
      const completed = new Set(await tx.uploads.completeJobs(settled.map((j) => j.id), lease.owner, at));
      await tx.merchants.hold(merchantId); // the backlog's counters move with the issue path's, never past them
      const audit: AuditRecord[] = [];
      const uploaded: string[] = [];
      const reduced = new Map<InvoiceKind, { count: number; preTaxFen: bigint }>();
      for (const job of settled) {
        if (!completed.has(job.id)) continue; // another process holds it now
        const record = records.get(job.subject);
        const verdict = verdicts.get(job.id)!;
        if (!record) continue;
        const sum = reduced.get(record.kind) ?? { count: 0, preTaxFen: 0n };
        reduced.set(record.kind, { count: sum.count + 1, preTaxFen: sum.preTaxFen + record.preTaxFen });
        if (verdict.kind === 'uploaded') uploaded.push(record.number);
        else if (verdict.kind === 'rejected') {
          await tx.uploads.recordProblem({
            merchantId, number: record.number, state: 'rejected', reasonCode: verdict.reasonCode, reason: verdict.reason,
            localDigest: record.digest, heldDigest: null, upstreamRecord: null, at,
          });
          if ((await tx.invoices.get(merchantId, record.number))?.status === 'issued') {
            await tx.invoices.setStatus(merchantId, record.number, { status: 'rejected', at, reason: verdict.reason });
            audit.push({ merchantId, actor: 'tax-service', action: 'invoice.rejected', subject: record.number, detail: { reasonCode: verdict.reasonCode, reason: verdict.reason } });
          }
        } else if (verdict.kind === 'quarantined') {
          await tx.uploads.recordProblem({
            merchantId, number: record.number, state: 'quarantined', reasonCode: null, reason: 'digest conflict',
            localDigest: record.digest, heldDigest: verdict.heldDigest, upstreamRecord: JSON.stringify(verdict.record), at,
          });
          audit.push({ merchantId, actor: 'tax-service', action: 'invoice.quarantined', subject: record.number, detail: { localDigest: record.digest, heldDigest: verdict.heldDigest } });
          await raiseAlert(tx, {
            merchantId, kind: 'upload.conflict', severity: 'critical', subject: record.number, at,
            detail: { localDigest: record.digest, heldDigest: verdict.heldDigest, code: faults.UPLOAD_CONFLICT.code },
          });
        }
      }
      // One audit entry for the submission's acceptances, listing the numbers (chain verify reads them).
      const changed = await tx.uploads.markUploaded(merchantId, uploaded, at);
      if (changed.length > 0) {
        audit.push({ merchantId, actor: 'tax-service', action: 'invoices.uploaded', subject: `${changed[0]}…${changed.at(-1)} (${changed.length})`, detail: { numbers: changed } });
      }
      // Accepted but not moved to 'uploaded': voided meanwhile. Their voids waited for this upload
      // and are due now (void-worker.ts); their status stays voided, so the entry names no new status.
      if (changed.length < uploaded.length) {
        const moved = new Set(changed);
        for (const number of await tx.voids.uploadAccepted(merchantId, uploaded.filter((n) => !moved.has(n)), at)) {
          audit.push({ merchantId, actor: 'tax-service', action: 'invoice.upload_accepted', subject: number, detail: { status: 'voided' } });
        }
      }
      await appendAuditEntries(tx, merchantId, at, audit);
      for (const [kind, delta] of reduced) {
        const oldest = await tx.uploads.oldestPending(merchantId, kind);
        await tx.uploads.reduceBacklog(merchantId, kind, delta, oldest);
      }
      await tx.uploads.releaseJobs(failed.map((j) => j.id), lease.owner, retryAt, false);
      await tx.uploads.releaseJobs(unknown.map((j) => j.id), lease.owner, retryAt, true);
      await noteReach(tx, merchantId, at, error);
    });
  }

  // While the client's circuit is open, claim nothing until its probe.
  return { topic: UPLOAD_TOPIC, handle, notBefore: circuitNotBefore(taxService) };
}

/**
 * The upload loop of one process: `lanes` runners side by side (FAPIAO_UPLOAD_LANES, default by
 * database: config.ts uploadLanes), so one submission travels to the tax service while another is
 * read or written down. Each lane holds its own leases. Measured with bench:drain on 2 cores with
 * uploads in the background process, two lanes drained 20–25 % faster than one, with the same
 * issuing p99 during the drain.
 *
 * Only the first lane looks for work every poll. The others work while there is a backlog: a lane
 * that claims a full batch wakes those idle, and one that finds less looks again only every
 * HELPER_POLLS polls unless woken, so that work still moves, a little later, while the first lane
 * is held up (a long batch, a backoff, a pause). Every claim and every submission's bookkeeping is a
 * write transaction that issuing waits behind, and while invoices trickle in, lanes polling side by
 * side split them into more, smaller transactions for no gain.
 */
export function startUploadWorker(ports: Ports, taxService: TaxService, options: RunnerOptions & { lanes: number }): OutboxRunner & { start(): void } {
  const handler = uploadHandler(ports, taxService, options);
  const owner = options.owner ?? leaseOwner();
  const batchSize = options.batchSize ?? MAX_RECORDS_PER_UPLOAD;
  const handle: OutboxHandler['handle'] = (jobs, lease) => {
    if (jobs.length >= batchSize) lanes.forEach((lane) => lane.wakeIfIdle()); // a backlog: every lane to work
    return handler.handle(jobs, lease);
  };
  const lanes = Array.from({ length: options.lanes }, (_, i) =>
    createOutboxRunner(ports, { ...handler, handle }, {
      leaseMs: 120_000, ...options, batchSize, owner: `${owner}/${i + 1}`, ...(i > 0 && { idleMs: (options.idleMs ?? DEFAULT_IDLE_MS) * HELPER_POLLS }),
    }));
  return {
    owner,
    start: () => lanes.forEach((lane) => lane.start()),
    wake: () => lanes.forEach((lane) => lane.wake()),
    wakeIfIdle: () => lanes.forEach((lane) => lane.wakeIfIdle()),
    runOnce: () => lanes[0]!.runOnce(),
    stop: async () => void (await Promise.all(lanes.map((lane) => lane.stop()))),
  };
}

function fromOutcome(outcome: UploadOutcome | undefined): Verdict {
  switch (outcome?.result) {
    case 'accepted':
    case 'duplicate':
      return { kind: 'uploaded' };
    case 'rejected':
      return { kind: 'rejected', reasonCode: outcome.reasonCode ?? null, reason: outcome.reason ?? outcome.reasonCode ?? 'rejected' };
    case 'conflict':
      return { kind: 'quarantined', heldDigest: outcome.heldDigest ?? null, record: outcome };
    case 'failed':
      return { kind: 'failed' };
    default:
      return { kind: 'unknown' }; // no outcome for a record we sent: ask before sending it again
  }
}

/** What a status answer settles; undefined when the tax service does not know the invoice (send it). */
function fromStatus(answer: InvoiceStatusAnswer, digest: string): Verdict | undefined {
  if (!answer.known) return undefined;
  if (answer.digest !== undefined && answer.digest !== digest) return { kind: 'quarantined', heldDigest: answer.digest, record: answer };
  if (answer.state === 'rejected') return { kind: 'rejected', reasonCode: null, reason: answer.reason ?? 'rejected' };
  return { kind: 'uploaded' };
}

/** A lane other than the first, when it found less than a full batch, looks again after this many polls unless a backlog wakes it. */
const HELPER_POLLS = 10;

/** Rows handled in one synchronous step (a read, a transaction). */
const SLICE = 200;

function slices<T>(items: readonly T[], size = SLICE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
