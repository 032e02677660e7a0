// What the tax service knows of an invoice: whether its upload was accepted, and, once it is
// voided (作废), whether the void has reached it (作废上报). Pure rules; the void worker
// (src/app/void-worker.ts) and the views use them.
//
// A void is told to the tax service only after the tax service holds the invoice: an invoice voided
// before its upload ran is still uploaded first (its number was used and may be on paper already;
// the tax service's series must have no hole), and then voided, in that order.
import type { Invoice } from './invoice.js';

export type UploadState = 'pending' | 'uploaded' | 'rejected' | 'quarantined';

/**
 * pending: not yet known to the tax service (waiting for the upload, or being sent); reported: the
 * tax service holds the invoice as voided; refused: the tax service refused the void (see the
 * reason; a person acts); not_needed: the tax service never accepted the invoice, nothing to void.
 */
export const voidReportStates = ['pending', 'reported', 'refused', 'not_needed'] as const;
export type VoidReportState = (typeof voidReportStates)[number];

export interface VoidReport {
  state: VoidReportState;
  /** When the state was reached (null while pending). */
  at: string | null;
  /** A refusal's reason as the tax service gave it ("CODE: text"). */
  reason: string | null;
}

/**
 * Where the invoice's upload stands. A problem the tax service reported wins; otherwise the status
 * says it, except for a voided invoice, whose status no longer does: then `uploadedAt` (kept when the
 * upload is accepted after the void, or when an uploaded invoice is voided) says it, and a void
 * settled as not needed says the upload was rejected (views that read no problem, as the list, used
 * to show such an invoice's upload as pending for good).
 */
export function uploadState(invoice: Pick<Invoice, 'status' | 'uploadedAt' | 'voidReport'>, problem?: 'rejected' | 'quarantined'): UploadState {
  if (problem) return problem;
  if (invoice.status === 'uploaded' || invoice.status === 'reversed') return 'uploaded';
  if (invoice.status === 'rejected') return 'rejected';
  if (invoice.uploadedAt) return 'uploaded';
  return invoice.voidReport?.state === 'not_needed' ? 'rejected' : 'pending';
}

/**
 * What to do with a void, given where the upload stands: send it once the tax service holds the
 * invoice; wait while the upload is pending or quarantined (a conflict means the tax service holds
 * ANOTHER invoice under this number: voiding that one would void someone else's; a person settles
 * the conflict first); nothing to send when the tax service refused the invoice.
 */
export function voidStep(upload: UploadState): 'send' | 'wait' | 'not_needed' {
  switch (upload) {
    case 'uploaded':
      return 'send';
    case 'rejected':
      return 'not_needed';
    default:
      return 'wait';
  }
}

/** The tax service's answer to a void request, as the protocol words it. */
export type VoidResult = 'voided' | 'already_voided' | 'refused' | 'failed';

/**
 * What an answer settles: voided and already_voided (a repeat: the request is idempotent) both mean
 * the tax service holds the invoice as voided; refused is final until a person acts; failed (not
 * processed this time) is sent again.
 */
export function voidVerdict(result: VoidResult): 'reported' | 'refused' | 'failed' {
  switch (result) {
    case 'voided':
    case 'already_voided':
      return 'reported';
    case 'refused':
      return 'refused';
    default:
      return 'failed';
  }
}

/** Whether a void report is final (nothing more will be sent). */
export function voidSettled(report: VoidReport | null | undefined): boolean {
  return report !== null && report !== undefined && report.state !== 'pending';
}
