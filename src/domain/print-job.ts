// A print job's life (R21), as pure rules. The one promise: a job is handed to a printer at most
// once at a time, and never again once a printer may have printed it. A job moves on (to a retry
// or to the backup printer) only when the printer has confirmed that it did NOT print it.
//
//   queued ──start──▶ sending ──accepted──▶ submitted ──completed──▶ printed
//     ▲                  │                      │
//     └──── failed ◀─────┴── confirmed not ─────┘       (after enough failures: moved to the
//          (backoff)          printed                    backup printer, or failed for good)
//   queued ──cancel──▶ cancelled
//
// "sending" is written before the printer is called, so a process that dies in the middle leaves
// a trace; whoever picks the job up asks the printer what became of it before doing anything.

import { shanghaiTimestamp } from './time.js';
import { bilingual, type Bilingual } from './faults.js';

export const printJobStates = ['queued', 'sending', 'submitted', 'printed', 'failed', 'cancelled'] as const;
export type PrintJobState = (typeof printJobStates)[number];

/** A job's state as people read it in a message. */
export const printJobStateWords: Record<PrintJobState, Bilingual> = {
  queued: bilingual('排队中', 'queued'),
  sending: bilingual('发送中', 'sending'),
  submitted: bilingual('已交给打印机', 'submitted'),
  printed: bilingual('已打印', 'printed'),
  failed: bilingual('打印失败', 'failed'),
  cancelled: bilingual('已取消', 'cancelled'),
};

export interface PrintJob {
  id: string;
  merchantId: string;
  invoiceNumber: string;
  /** The printer it is on now; differs from originalPrinterId after a move to the backup. */
  printerId: string;
  originalPrinterId: string;
  state: PrintJobState;
  /** Attempts on the current printer. */
  attempts: number;
  /** Attempts on all printers together. */
  totalAttempts: number;
  /** The printer's own id for it (a CUPS job id, a file name), once the printer has it. */
  externalId: string | null;
  lastError: string | null;
  nextAttemptAt: string;
  createdAt: string;
  updatedAt: string;
  /** When it was handed to the current printer (to notice a printer that never prints it). */
  submittedAt: string | null;
  printedAt: string | null;
  movedAt: string | null;
  requestedBy: string;
}

export interface PrintPolicy {
  /** Pause before the n-th retry: baseDelayMs·2^(n−1), capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failed attempts on one printer before the job moves to that printer's backup. */
  failoverAfter: number;
  /** Failed attempts in all before the job fails for good (it is then printed by hand). */
  maxAttempts: number;
  /** A printer that holds a job this long without printing it is treated as failed. */
  stuckAfterMs: number;
  /** How often a submitted job's state is asked for. */
  pollMs: number;
}

export const defaultPrintPolicy: PrintPolicy = {
  baseDelayMs: 5_000,
  maxDelayMs: 5 * 60_000,
  failoverAfter: 3,
  maxAttempts: 12,
  stuckAfterMs: 2 * 60_000,
  pollMs: 2_000,
};

export class PrintJobTransitionError extends Error {}

const ACTIVE: readonly PrintJobState[] = ['queued', 'sending', 'submitted'];

export function isActive(job: Pick<PrintJob, 'state'>): boolean {
  return ACTIVE.includes(job.state);
}

export function newPrintJob(fields: { id: string; merchantId: string; invoiceNumber: string; printerId: string; requestedBy: string; at: string }): PrintJob {
  return {
    id: fields.id, merchantId: fields.merchantId, invoiceNumber: fields.invoiceNumber, printerId: fields.printerId, originalPrinterId: fields.printerId,
    state: 'queued', attempts: 0, totalAttempts: 0, externalId: null, lastError: null, nextAttemptAt: fields.at,
    createdAt: fields.at, updatedAt: fields.at, submittedAt: null, printedAt: null, movedAt: null, requestedBy: fields.requestedBy,
  };
}

function expect(job: PrintJob, allowed: readonly PrintJobState[], event: string): void {
  if (!allowed.includes(job.state)) throw new PrintJobTransitionError(`print job ${job.id}: cannot ${event} when ${job.state}`);
}

/** About to call the printer: recorded first, so a crash in the call is noticed. */
export function startSending(job: PrintJob, at: string): PrintJob {
  expect(job, ['queued'], 'start sending');
  return { ...job, state: 'sending', attempts: job.attempts + 1, totalAttempts: job.totalAttempts + 1, externalId: null, updatedAt: at };
}

/** The printer accepted the job under its own id; from here on it may print it at any moment. */
export function submitted(job: PrintJob, externalId: string, at: string): PrintJob {
  expect(job, ['sending'], 'record the submission');
  return { ...job, state: 'submitted', externalId, submittedAt: at, updatedAt: at };
}

export function printed(job: PrintJob, at: string): PrintJob {
  expect(job, ['sending', 'submitted'], 'record the print');
  return { ...job, state: 'printed', printedAt: at, lastError: null, updatedAt: at };
}

/**
 * The printer confirmed that it did not print the job (it refused it, was not ready, or the job
 * was cancelled there). Retry after a backoff, move to the backup after `failoverAfter` failures
 * on this printer, or fail for good after `maxAttempts` in all.
 */
export function attemptFailed(job: PrintJob, reason: string, at: Date, policy: PrintPolicy, backupPrinterId: string | null): PrintJob {
  expect(job, ['queued', 'sending', 'submitted'], 'record a failure');
  const stamp = shanghaiTimestamp(at);
  // A failure before the printer was even called (it was not ready) still counts as an attempt.
  const counted = job.state === 'queued' ? { attempts: job.attempts + 1, totalAttempts: job.totalAttempts + 1 } : {};
  const failedJob = { ...job, ...counted, externalId: null, submittedAt: null, lastError: reason, updatedAt: stamp };
  if (failedJob.totalAttempts >= policy.maxAttempts) return { ...failedJob, state: 'failed' };
  if (failedJob.attempts >= policy.failoverAfter && backupPrinterId && backupPrinterId !== job.printerId) {
    return { ...failedJob, state: 'queued', printerId: backupPrinterId, attempts: 0, movedAt: stamp, nextAttemptAt: stamp };
  }
  return { ...failedJob, state: 'queued', nextAttemptAt: shanghaiTimestamp(new Date(at.getTime() + retryDelay(failedJob.attempts, policy))) };
}

/** The printer cannot say whether it printed the job: stop, and leave it to a person (never resend). */
export function unconfirmed(job: PrintJob, reason: string, at: string): PrintJob {
  expect(job, ['sending', 'submitted'], 'give up on confirming');
  return { ...job, state: 'failed', lastError: reason, updatedAt: at };
}

export function cancel(job: PrintJob, at: string): PrintJob {
  expect(job, ['queued'], 'cancel');
  return { ...job, state: 'cancelled', updatedAt: at };
}

export function retryDelay(failures: number, policy: Pick<PrintPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** Whether a submitted job has sat on its printer too long. */
export function isStuck(job: PrintJob, now: Date, policy: PrintPolicy): boolean {
  return job.state === 'submitted' && job.submittedAt !== null && now.getTime() - Date.parse(job.submittedAt) >= policy.stuckAfterMs;
}

