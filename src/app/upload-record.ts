// What an 'invoice.upload' job sends to the tax service. The record is built when the invoice is
// issued and travels in the job's payload, written in the same transaction as the invoice, so a
// drain of a long backlog reads outbox rows only, not every invoice again.
import { canonicalContent, type Invoice } from '../domain/invoice.js';
import type { UploadRecord } from '../upstream/protocol.js';
import type { OutboxJob } from './ports.js';

/** The payload of an upload job: anything the caller adds, and the record to send (its digest included). */
export function uploadJobPayload(invoice: Invoice, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, record: uploadRecord(invoice) });
}

/** The record a job carries; undefined for jobs enqueued before records were carried. */
export function carriedRecord(job: OutboxJob): UploadRecord | undefined {
  const payload = JSON.parse(job.payload) as { record?: UploadRecord };
  return payload.record?.number === job.subject ? payload.record : undefined;
}

export function uploadRecord(invoice: Invoice): UploadRecord {
  return {
    number: invoice.number,
    kind: invoice.kind,
    issuedAt: invoice.issuedAt,
    buyerTaxId: invoice.buyer.taxId,
    totalAmountFen: invoice.totalAmount.toString(),
    totalTaxFen: invoice.totalTax.toString(),
    digest: invoice.digest,
    content: canonicalContent(invoice),
  };
}
