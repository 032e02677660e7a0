// What an 'invoice.upload' job sends to the tax service. The record is built when the invoice is
// issued and stored beside the job in the same transaction (upload_records) in the JSON the upload
// request carries, so a drain of a long backlog sends the stored bytes as they are instead of
// rebuilding, serialising and encoding each record again.
import { canonicalContent, type Invoice } from '../domain/invoice.js';
import { uploadRecordJson, type UploadRecord } from '../upstream/protocol.js';
import type { Repositories } from './ports.js';
import type { StoredUploadRecord, UploadJob, UploadRecordFacts } from './upload-ports.js';

/** The upload jobs of `invoices` with their records; `extra` goes into each job's payload (what asked for it). */
export function uploadJobs(invoices: readonly Invoice[], at: string, extra: Record<string, unknown> = {}): UploadJob[] {
  const payload = JSON.stringify(extra);
  return invoices.map((invoice) => ({ merchantId: invoice.merchantId, number: invoice.number, payload, record: storedRecord(uploadRecord(invoice)), at }));
}

function storedRecord(record: UploadRecord): StoredUploadRecord {
  return { json: uploadRecordJson(record), ...recordFacts(record) };
}

export function recordFacts(record: UploadRecord): UploadRecordFacts {
  return { kind: record.kind, preTaxFen: BigInt(record.totalAmountFen), digest: record.digest };
}

export function enqueueUploads(tx: Repositories, invoices: readonly Invoice[], at: string, extra: Record<string, unknown> = {}): Promise<void> {
  return tx.uploads.enqueue(uploadJobs(invoices, at, extra));
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
