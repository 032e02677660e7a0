// The tax-service protocol as the rest of Fapiao sees it (docs/tax-service-protocol.md is the
// wire-level description). The sandbox implements the server side; src/upstream/client.ts the
// client side. Amounts travel as decimal fen strings, never as binary floats.
import type { InvoiceKind } from '../domain/invoice.js';
import type { VoidResult } from '../domain/void-report.js';

/** A 号段: the sequences `first..last` of one (seller, year) series, granted by the tax service. */
export interface NumberBlock {
  blockId: string;
  year: number;
  first: number;
  last: number;
}

/** What the tax service keeps of one invoice: enough to deduplicate and reconcile. */
export interface UploadRecord {
  number: string;
  kind: InvoiceKind;
  issuedAt: string; // Asia/Shanghai timestamp, as on the invoice
  buyerTaxId: string;
  totalAmountFen: string; // pre-tax
  totalTaxFen: string;
  digest: string; // SHA-256 of the canonical content
  /** The invoice's canonical content, so the tax service holds the invoice itself. */
  content: string;
}

/**
 * A record as the upload request carries it: its JSON (docs/tax-service-protocol.md), encoded in
 * UTF-8. Encoded once when the invoice is issued and stored so; a submission of 1000 is then the
 * stored bytes joined, without parsing, re-serialising and re-encoding about a megabyte of text.
 */
export interface EncodedUploadRecord {
  number: string;
  wire: Uint8Array;
}

/** The record's JSON on the wire (snake_case, amounts as fen strings). */
export function uploadRecordJson(r: UploadRecord): string {
  return JSON.stringify({
    number: r.number, kind: r.kind, issued_at: r.issuedAt, buyer_tax_id: r.buyerTaxId,
    total_amount_fen: r.totalAmountFen, total_tax_fen: r.totalTaxFen, digest: r.digest, content: r.content,
  });
}

export function encodeUploadRecord(r: UploadRecord): EncodedUploadRecord {
  return { number: r.number, wire: Buffer.from(uploadRecordJson(r)) };
}

/**
 * One record's outcome. `duplicate` = already held with the same digest (counts as accepted);
 * `conflict` = already held with a DIFFERENT digest (never overwritten); `rejected` = refused by a
 * rule, with the tax service's reason; `failed` = not processed this time (retry later).
 */
export interface UploadOutcome {
  number: string;
  result: 'accepted' | 'duplicate' | 'conflict' | 'rejected' | 'failed';
  reasonCode?: string;
  reason?: string;
  /** On a conflict: the digest the tax service holds. */
  heldDigest?: string;
}

export interface UploadAnswer {
  outcomes: UploadOutcome[];
  /** Flow control (like VERI*FACTU's TiempoEsperaEnvio): wait this long before the next submission. */
  waitSeconds: number;
}

export interface InvoiceStatusAnswer {
  number: string;
  known: boolean;
  digest?: string;
  /** voided: accepted, and voided since (`voidedAt`). */
  state?: 'accepted' | 'rejected' | 'voided';
  reason?: string;
  voidedAt?: string;
}

/** A void (作废) as the tax service is told it: why, and when it was voided (Asia/Shanghai). */
export interface VoidRequest {
  reason: string;
  voidedAt: string;
}

/**
 * The tax service's answer to a void. `voided` = recorded now; `already_voided` = recorded before
 * (a repeated request: harmless); `refused` = not voided, by a rule (`reasonCode`: INVOICE_UNKNOWN,
 * ALREADY_REVERSED, VOID_PERIOD_CLOSED, …); `failed` = not processed this time (send again).
 */
export interface VoidAnswer {
  number: string;
  result: VoidResult;
  /** When the tax service holds it voided from (the first request's voided_at). */
  voidedAt?: string;
  reasonCode?: string;
  reason?: string;
}

export interface AcceptedInvoice {
  number: string;
  digest: string;
  acceptedAt: string;
}

export interface ContingencyLimit {
  kind: InvoiceKind;
  /** Issuing this kind stops when the oldest un-uploaded invoice is older than this. */
  maxOfflineHours: number;
  /** …or when the un-uploaded invoices' pre-tax amounts add up to more than this. */
  maxOfflineAmountFen: string;
}

export interface MerchantTerms {
  /** 授信额度 per calendar month, pre-tax fen; null = no credit line set. */
  monthlyCreditFen: string | null;
  contingency: ContingencyLimit[];
}

export const MAX_RECORDS_PER_UPLOAD = 1000;

/** Numbers per status query: a whole submission's, so its unknown outcomes are settled in one call. */
export const MAX_NUMBERS_PER_STATUS_QUERY = MAX_RECORDS_PER_UPLOAD;

/** The tax service, from the client's point of view. Every call is for one seller (taxpayer). */
export interface TaxService {
  /**
   * Grants the next `size` numbers of the (seller, year) series. The same `requestId` always gets
   * the same block, so a retried request never costs a second block: keep the id with the request
   * until the block is stored (the client makes one up per call when none is given).
   */
  allocateBlock(sellerTaxId: string, year: number, size: number, requestId?: string): Promise<NumberBlock>;
  upload(sellerTaxId: string, records: readonly EncodedUploadRecord[]): Promise<UploadAnswer>;
  status(sellerTaxId: string, number: string): Promise<InvoiceStatusAnswer>;
  /** The status of each of up to MAX_NUMBERS_PER_STATUS_QUERY invoices, one answer per number in the order asked. */
  statuses(sellerTaxId: string, numbers: readonly string[]): Promise<InvoiceStatusAnswer[]>;
  /**
   * Voids an invoice the tax service holds. Idempotent: the same void sent again answers
   * `already_voided`, so a request whose answer was lost is simply sent again.
   */
  voidInvoice(sellerTaxId: string, number: string, request: VoidRequest): Promise<VoidAnswer>;
  /** The invoices of this seller ISSUED on one Shanghai date (开票日期) that the tax service has accepted, a page at a time. */
  acceptedOn(sellerTaxId: string, date: string, cursor?: string): Promise<{ invoices: AcceptedInvoice[]; next?: string }>;
  terms(sellerTaxId: string): Promise<MerchantTerms>;
}
