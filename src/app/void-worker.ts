// Voids reach the tax service (作废上报): the 'invoice.void' outbox jobs, written in the transaction
// of each void (void-invoice.ts), claimed by lease (outbox-runner.ts) and sent one invoice at a time.
//   - Order: a void is sent only once the tax service holds the invoice (its upload accepted). An
//     invoice voided before its upload ran is uploaded first, as it was issued, and then voided: its
//     number was used and may be on paper, and the tax service's series must have no hole. Until
//     then the job waits, given back without counting an attempt; the upload's acceptance makes it
//     due at once (upload-worker.ts), and the wait is re-checked under the merchant's lock, so a
//     void never waits longer than the upload did (at most UPLOAD_WAIT_MS if anything were missed).
//   - A void is idempotent at the tax service (a repeat answers already_voided), so a doubtful
//     attempt (timeout, lost answer, a process killed mid-call) is simply sent again after a backoff:
//     no status query first, nothing can happen twice.
//   - What the tax service answered is written in ONE transaction with the job's completion, only
//     for jobs this process still holds, with an audit entry; a refusal also raises an alert (4026).
//   - The tax service refused the invoice's upload: it never held it as valid, nothing to void
//     there (not_needed). A quarantined upload (it holds ANOTHER invoice under the number) waits
//     for a person: voiding that one would void someone else's invoice.
import { faults } from '../domain/faults.js';
import type { Invoice } from '../domain/invoice.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { uploadState, voidSettled, voidStep, voidVerdict } from '../domain/void-report.js';
import type { TaxService, VoidAnswer } from '../upstream/protocol.js';
import { raiseAlert } from './alerts.js';
import type { AuditRecord } from './audit.js';
import { createOutboxRunner, type BatchResult, type Lease, type OutboxHandler, type OutboxRunner, type RunnerOptions } from './outbox-runner.js';
import type { OutboxJob, Ports, Repositories } from './ports.js';
import type { UploadProblem } from './upload-ports.js';
import { appendAuditEntries, byMerchant, circuitNotBefore, eachGroup, merchantCache, noteReach, retryDelayMs } from './upstream-jobs.js';

export const VOID_TOPIC = 'invoice.void';

/** Queues a void's report to the tax service; the worker sends it once the tax service holds the invoice. */
export function enqueueVoid(tx: Repositories, merchantId: string, number: string, void_: { reason: string; voidedAt: string }, at: string): Promise<void> {
  return tx.outbox.enqueue({ merchantId, topic: VOID_TOPIC, subject: number, payload: JSON.stringify({ reason: void_.reason, voided_at: void_.voidedAt }), at });
}

/** A void waiting for its upload looks again after this at the latest (the acceptance makes it due at once). */
export const UPLOAD_WAIT_MS = 5 * 60_000;

type Outcome =
  | { kind: 'settled'; state: 'reported' | 'refused' | 'not_needed'; reason: string | null; detail: Record<string, unknown> }
  | { kind: 'nothing' } // the invoice is gone, not voided, or its void already settled (a repeated job)
  | { kind: 'wait' } // the tax service does not hold the invoice yet
  | { kind: 'retry' }; // not delivered this time

export function voidHandler(ports: Ports, taxService: TaxService, options: RunnerOptions = {}): OutboxHandler {
  const merchantOf = merchantCache(ports);
  const backoffMs = options.backoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;

  /** Per seller; a failed round has given its jobs back already (after a flow-control pause, if asked). */
  function handle(jobs: OutboxJob[], lease: Lease): Promise<BatchResult> {
    return eachGroup(byMerchant(jobs), async (merchantId, group) => {
      await voidGroup(merchantId, group, lease);
      return 0;
    });
  }

  /** Sends one merchant's voids, one invoice at a time; the first failure stops the round (the rest retry). */
  async function voidGroup(merchantId: string, jobs: OutboxJob[], lease: Lease): Promise<void> {
    const merchant = await merchantOf(merchantId);
    const outcomes = new Map<number, Outcome>();
    let called = false;
    let error: unknown;
    for (const job of jobs) {
      const found = merchant && error === undefined ? await ports.store.read.uploads.invoiceWithProblem(merchantId, job.subject) : undefined;
      const next = error !== undefined ? 'retry' : nextStep(found);
      if (next !== 'send') {
        outcomes.set(job.id, typeof next === 'string' ? { kind: next } : next);
        continue;
      }
      const invoice = found!.invoice;
      called = true;
      try {
        outcomes.set(job.id, fromAnswer(await taxService.voidInvoice(merchant!.taxId, invoice.number, { reason: invoice.voidReason || '作废', voidedAt: invoice.statusChangedAt! })));
      } catch (thrown) {
        error = thrown;
        outcomes.set(job.id, { kind: 'retry' });
      }
    }
    await finish(merchantId, jobs, outcomes, lease, called, error);
    if (error !== undefined) throw error;
  }

  /** One transaction: what was answered, the jobs completed or given back, the connection state. */
  async function finish(merchantId: string, jobs: OutboxJob[], outcomes: Map<number, Outcome>, lease: Lease, called: boolean, error: unknown): Promise<void> {
    const of = (kind: Outcome['kind']) => jobs.filter((j) => outcomes.get(j.id)?.kind === kind);
    const retry = of('retry');
    const now = ports.clock.now().getTime();
    const at = shanghaiTimestamp(new Date(now));
    const later = (ms: number) => shanghaiTimestamp(new Date(now + ms));
    await ports.store.write(async (tx) => {
      await tx.merchants.hold(merchantId); // serialised with the void itself and with the upload's acceptance
      const closing = [...of('settled'), ...of('nothing')];
      const completed = new Set(await tx.uploads.completeJobs(closing.map((j) => j.id), lease.owner, at));
      const audit: AuditRecord[] = [];
      for (const job of of('settled')) {
        const outcome = outcomes.get(job.id);
        if (!completed.has(job.id) || outcome?.kind !== 'settled') continue; // another process holds it now
        await tx.voids.settle(merchantId, job.subject, { state: outcome.state, at, reason: outcome.reason });
        audit.push({ merchantId, actor: 'tax-service', action: `invoice.void_${outcome.state}`, subject: job.subject, detail: outcome.detail });
        if (outcome.state === 'refused') {
          await raiseAlert(tx, { merchantId, kind: 'void.refused', severity: 'critical', subject: job.subject, at, detail: { code: faults.VOID_REFUSED.code, reason: outcome.reason } });
        }
      }
      await appendAuditEntries(tx, merchantId, at, audit);
      // Waiting for the upload, looked at again under the lock: accepted meanwhile → due at once.
      const due: number[] = [];
      const waiting: number[] = [];
      for (const job of of('wait')) (await stillWaiting(tx, merchantId, job.subject) ? waiting : due).push(job.id);
      await tx.uploads.releaseJobs(due, lease.owner, at, false);
      await tx.uploads.releaseJobs(waiting, lease.owner, later(UPLOAD_WAIT_MS), false);
      const attempts = Math.max(1, ...retry.map((j) => j.attempts));
      await tx.uploads.releaseJobs(retry.map((j) => j.id), lease.owner, later(retryDelayMs(error, attempts, { backoffMs, maxBackoffMs })), true);
      if (called || error !== undefined) await noteReach(tx, merchantId, at, error);
    });
  }

  return { topic: VOID_TOPIC, handle, notBefore: circuitNotBefore(taxService) };
}

/** The void worker of one process (one lane: voids are few, and each is one small call). */
export function startVoidWorker(ports: Ports, taxService: TaxService, options: RunnerOptions = {}): OutboxRunner & { start(): void } {
  return createOutboxRunner(ports, voidHandler(ports, taxService, options), { batchSize: 100, leaseMs: 60_000, ...options });
}

/** What a claimed void needs, from its invoice and what the tax service said of the upload. */
function nextStep(found: { invoice: Invoice; problem: UploadProblem | undefined } | undefined): 'send' | 'nothing' | 'wait' | Outcome {
  const invoice = found?.invoice;
  if (!invoice || invoice.status !== 'voided' || voidSettled(invoice.voidReport)) return 'nothing';
  const step = voidStep(uploadState(invoice, found.problem?.state));
  if (step === 'not_needed') return { kind: 'settled', state: 'not_needed', reason: null, detail: { upload: 'rejected' } };
  return step;
}

async function stillWaiting(tx: Repositories, merchantId: string, number: string): Promise<boolean> {
  const found = await tx.uploads.invoiceWithProblem(merchantId, number);
  return nextStep(found) === 'wait';
}

function fromAnswer(answer: VoidAnswer): Outcome {
  const verdict = voidVerdict(answer.result);
  if (verdict === 'failed') return { kind: 'retry' };
  const reason = verdict === 'refused' ? `${answer.reasonCode ?? 'REFUSED'}: ${answer.reason ?? ''}`.trim() : null;
  return { kind: 'settled', state: verdict, reason, detail: { result: answer.result, ...(answer.voidedAt && { voidedAt: answer.voidedAt }), ...(reason && { reason }) } };
}
