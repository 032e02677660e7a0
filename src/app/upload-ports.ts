// Repositories for numbers from the tax service (号段), the upload backlog and the merchant's
// connection state. Part of `Repositories` (ports.ts), implemented in
// src/store/upload-repositories.ts for both dialects.
import type { Invoice, InvoiceKind } from '../domain/invoice.js';
import type { VoidReportState } from '../domain/void-report.js';

export interface NumberBlockRecord {
  merchantId: string;
  blockId: string;
  year: number;
  first: number;
  last: number;
  /** The next sequence to hand out; past `last` when the block is used up. */
  next: number;
  source: 'upstream' | 'granted';
  grantedAt: string;
}

/** A number block asked of the tax service and not yet stored (see refillNumbers). */
export interface BlockRequest {
  requestId: string;
  year: number;
  size: number;
}

export type UploadProblemState = 'rejected' | 'quarantined';

/** What the tax service said about an invoice that was not a plain acceptance. */
export interface UploadProblem {
  merchantId: string;
  number: string;
  state: UploadProblemState;
  reasonCode: string | null;
  reason: string | null;
  localDigest: string;
  heldDigest: string | null;
  upstreamRecord: string | null;
  at: string;
}

export interface BacklogRow {
  kind: InvoiceKind;
  count: number;
  preTaxFen: bigint;
  oldestAt: string | null;
}

export interface UpstreamState {
  merchantId: string;
  mode: 'online' | 'contingency';
  since: string;
  lastError: string | null;
  lastSuccessAt: string | null;
  warnedAt: string | null;
  /** When this contingency episode's `contingency.started` alert was raised; none while it is short. */
  alertedAt: string | null;
}

/** An upload to enqueue: the invoice's number, what asked for it (payload) and the record it will send. */
export interface UploadJob {
  merchantId: string;
  number: string;
  payload: string;
  record: StoredUploadRecord;
  at: string;
}

/**
 * What an upload job sends, stored beside it: the record's JSON as the tax service reads it
 * (uploadRecordJson), sent as stored, and what the worker needs to know without reading that JSON:
 * the kind and pre-tax amount its backlog counters drop by, and the digest a status answer must match.
 */
export interface UploadRecordFacts {
  kind: InvoiceKind;
  preTaxFen: bigint;
  digest: string;
}

export interface StoredUploadRecord extends UploadRecordFacts {
  json: string;
}

/** A block's next sequence after an issue batch took numbers from it. */
export interface BlockAdvance {
  blockId: string;
  next: number;
}

export interface OpenBlock {
  blockId: string;
  next: number;
  last: number;
}

export interface UploadRepositories {
  numberBlocks: {
    /** The blocks of (merchant, year) with numbers left, oldest first. */
    open(merchantId: string, year: number): Promise<OpenBlock[]>;
    insert(block: NumberBlockRecord): Promise<void>;
    /** Whether any block of the merchant for `year` shares a sequence with first..last. */
    overlaps(merchantId: string, year: number, first: number, last: number): Promise<boolean>;
    /** Numbers still to hand out for (merchant, year), and in how many open blocks. */
    reserve(merchantId: string, year: number): Promise<{ remaining: number; blocks: number }>;
    /** The merchants with fewer than `below` numbers left for `year` (none at all included). */
    lowReserves(year: number, below: number): Promise<string[]>;
    list(merchantId: string, year: number): Promise<NumberBlockRecord[]>;
    /** The merchant's block requests made and not yet crossed off, oldest first. */
    requests(merchantId: string): Promise<BlockRequest[]>;
    addRequest(merchantId: string, request: BlockRequest, at: string): Promise<void>;
    /** Crosses a request off: its block is stored, or the tax service refused it. */
    settleRequest(merchantId: string, requestId: string): Promise<void>;
  };
  uploads: {
    /** Enqueues uploads of invoices (distinct numbers) with the records they will send. */
    enqueue(jobs: readonly UploadJob[]): Promise<void>;
    /** The records stored with these jobs of the merchant, their JSON as UTF-8 bytes (any order; jobs without one are left out). */
    records(merchantId: string, jobIds: readonly number[]): Promise<Array<UploadRecordFacts & { jobId: number; wire: Uint8Array }>>;
    /** The merchant's invoices with these numbers (any order; missing ones are left out). */
    invoices(merchantId: string, numbers: readonly string[]): Promise<Invoice[]>;
    /** Marks upload jobs done, only those `owner` still holds; returns the ids it marked. Their records stay until purgeRecords. */
    completeJobs(ids: readonly number[], owner: string, at: string): Promise<number[]>;
    /**
     * Looks at the next `limit` records after job `after` and deletes those whose jobs are done;
     * `next` is where to go on from (null: no records after `after`).
     */
    purgeRecords(after: number, limit: number): Promise<{ deleted: number; next: number | null }>;
    /**
     * Gives jobs back for later. `counted: false` undoes the claim's attempt count: the attempt
     * certainly did not reach the tax service, so the next one needs no status query first.
     */
    releaseJobs(ids: readonly number[], owner: string, availableAt: string, counted: boolean): Promise<number>;
    /** Sets 'issued' invoices to 'uploaded'; returns the numbers that changed (a voided one stays voided). */
    markUploaded(merchantId: string, numbers: readonly string[], at: string): Promise<string[]>;
    recordProblem(problem: UploadProblem): Promise<void>;
    problem(merchantId: string, number: string): Promise<UploadProblem | undefined>;
    /** One invoice of the merchant with what the tax service said about it, if anything. */
    invoiceWithProblem(merchantId: string, number: string): Promise<{ invoice: Invoice; problem: UploadProblem | undefined } | undefined>;
    countProblems(merchantId: string): Promise<Record<UploadProblemState, number>>;
    /** The numbers of the merchant's invoices with an upload problem (rejected or quarantined): few. */
    problemNumbers(merchantId: string): Promise<Set<string>>;
    /** When the oldest upload of this kind still waiting was queued: its invoice's issue, or a re-upload (reconciliation). */
    oldestPending(merchantId: string, kind: InvoiceKind): Promise<string | null>;
    backlog(merchantId: string): Promise<BacklogRow[]>;
    /** Subtracts uploaded (or settled) invoices from a kind's backlog and sets its oldest. */
    reduceBacklog(merchantId: string, kind: InvoiceKind, delta: { count: number; preTaxFen: bigint }, oldestAt: string | null): Promise<void>;
  };
  /** Voids on their way to the tax service (作废上报); the 'invoice.void' outbox jobs carry them. */
  voids: {
    /**
     * Marks the invoice voided and its report to the tax service pending. `uploadedAt` keeps whether
     * the tax service had accepted the upload, which the status no longer says once it is 'voided'.
     */
    record(merchantId: string, number: string, v: { at: string; reason: string; uploadedAt: string | null }): Promise<void>;
    /**
     * The tax service accepted the uploads of these invoices; for those of them that are voided, notes
     * it and makes their void jobs due at `at` (the void waited for the upload). Returns those numbers.
     */
    uploadAccepted(merchantId: string, numbers: readonly string[], at: string): Promise<string[]>;
    /**
     * A voided invoice the tax service no longer holds goes up again (reconciliation): it waits for
     * that upload as if never accepted, and its void's report is pending again.
     */
    awaitUpload(merchantId: string, number: string): Promise<void>;
    /** Settles the report of a voided invoice: reported, refused (with the reason) or not needed. */
    settle(merchantId: string, number: string, report: { state: Exclude<VoidReportState, 'pending'>; at: string; reason: string | null }): Promise<void>;
    /** The merchant's voids not yet reported (pending) and refused by the tax service. */
    open(merchantId: string): Promise<{ pending: number; refused: number }>;
  };
  upstreamState: {
    get(merchantId: string): Promise<UpstreamState | undefined>;
    put(state: UpstreamState): Promise<void>;
  };
  terms: {
    /** Caches the tax service's terms on the merchant row: contingency limits (JSON) and its credit-line grant, which replaces the last one (null lifts it). */
    save(merchantId: string, terms: { contingencyJson: string; grantedCreditFen: bigint | null; fetchedAt: string }): Promise<void>;
  };
}
