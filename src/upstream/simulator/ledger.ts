// What the sandbox tax service knows and decides: enrolled keys, number blocks (号段), the invoices
// it holds, rejections, terms and the per-number upload counters. Synchronous (better-sqlite3);
// every decision that reads and then writes runs in one BEGIN IMMEDIATE transaction, so several
// processes on one file decide as one tax service.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { MAX_NUMBERS_PER_STATUS_QUERY, MAX_RECORDS_PER_UPLOAD } from '../protocol.js';
import type SQLite from 'better-sqlite3';
import { writeTx, type SandboxDb } from './db.js';
import type { FaultBoard } from './faults.js';
import { shanghaiDate, shanghaiTimestamp } from '../../domain/time.js';

/** A record as it travels (snake_case wire form). */
export interface WireRecord {
  number: string;
  kind: string;
  issued_at: string;
  buyer_tax_id: string;
  total_amount_fen: string;
  total_tax_fen: string;
  digest: string;
  content: string;
}

export interface WireOutcome {
  number: string;
  result: 'accepted' | 'duplicate' | 'conflict' | 'rejected' | 'failed';
  reason_code?: string;
  reason?: string;
  held_digest?: string;
}

export interface WireTerms {
  monthly_credit_fen: string | null;
  contingency: Array<{ kind: 'normal' | 'special'; max_offline_hours: number; max_offline_amount_fen: string }>;
}

/** Defaults in the spirit of the rules for offline issuing: 72 h / ¥1,000,000 normal, 24 h / ¥500,000 special. */
export const DEFAULT_TERMS: WireTerms = {
  monthly_credit_fen: null,
  contingency: [
    { kind: 'normal', max_offline_hours: 72, max_offline_amount_fen: '100000000' },
    { kind: 'special', max_offline_hours: 24, max_offline_amount_fen: '50000000' },
  ],
};

export class SandboxError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly retryAfterSeconds?: number) {
    super(message);
  }
}

export interface UploadCounter {
  seller: string;
  number: string;
  digest: string | null;
  submissions: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  rejections: number;
  failed: number;
  echoes: number;
  /** Void requests that arrived for the number, how many voided it (0 or 1), and how many were refused. */
  void_requests: number;
  voids: number;
  void_refusals: number;
  /** When the tax service stored the invoice, and when it recorded its void (null: not yet). */
  accepted_at: string | null;
  voided_recorded_at: string | null;
}

export interface WireVoidAnswer {
  number: string;
  result: 'voided' | 'already_voided' | 'refused' | 'failed';
  voided_at?: string;
  reason_code?: string;
  reason?: string;
}

const MAX_BLOCK_SIZE = 100_000;
const NONCE_KEEP_MS = 15 * 60_000;

export class Ledger {
  private noncesPrunedAt = 0;
  private readonly statements = new Map<string, SQLite.Statement<unknown[]>>();

  constructor(readonly db: SandboxDb, private readonly faults: FaultBoard, private readonly now: () => number = Date.now) {}

  /** Open enrolment (sandbox only): a new key for the seller each time; earlier keys stay valid. */
  enroll(seller: string): { keyId: string; secret: string } {
    const keyId = `sk_${randomBytes(8).toString('hex')}`;
    const secret = randomBytes(32).toString('base64url');
    this.sql('insert into keys (key_id, seller, secret, created_at) values (?, ?, ?, ?)').run(keyId, seller, secret, this.stamp());
    return { keyId, secret };
  }

  key(keyId: string): { seller: string; secret: string } | undefined {
    return this.sql('select seller, secret from keys where key_id = ?').get(keyId) as { seller: string; secret: string } | undefined;
  }

  /** Records the nonce's single use; false when it was used before. */
  useNonce(keyId: string, nonce: string): boolean {
    const now = this.now();
    if (now - this.noncesPrunedAt > 60_000) {
      this.noncesPrunedAt = now;
      this.sql('delete from nonces where at < ?').run(now - NONCE_KEEP_MS);
    }
    return this.sql('insert into nonces (key_id, nonce, at) values (?, ?, ?) on conflict do nothing').run(keyId, nonce, now).changes === 1;
  }

  /** Grants the next `size` numbers of the series; the same request id always gets the same block. */
  allocate(seller: string, requestId: string, year: number, size: number): { block_id: string; year: number; first: number; last: number } {
    if (!/^[\w-]{1,100}$/.test(requestId)) throw new SandboxError(400, 'BAD_REQUEST', 'request_id: 1-100 letters, digits, _ or -');
    if (!Number.isInteger(year) || year < 2000 || year > 2099) throw new SandboxError(400, 'BAD_REQUEST', 'year: 2000-2099');
    if (!Number.isInteger(size) || size < 1 || size > MAX_BLOCK_SIZE) throw new SandboxError(400, 'BAD_REQUEST', `size: 1-${MAX_BLOCK_SIZE}`);
    return writeTx(this.db, () => {
      const earlier = this.sql('select block_id, year, first, last from blocks where seller = ? and request_id = ?').get(seller, requestId) as
        { block_id: string; year: number; first: number; last: number } | undefined;
      if (earlier) {
        if (earlier.year !== year || earlier.last - earlier.first + 1 !== size) throw new SandboxError(409, 'REQUEST_ID_REUSED', `request_id ${requestId} was used for another block request`);
        return earlier;
      }
      const top = this.sql('select coalesce(max(last), 0) as top from blocks where seller = ? and year = ?').get(seller, year) as { top: number };
      const block = { block_id: `blk_${randomUUID()}`, year, first: top.top + 1, last: top.top + size };
      this.sql('insert into blocks (block_id, seller, year, first, last, request_id, created_at) values (?, ?, ?, ?, ?, ?, ?)')
        .run(block.block_id, seller, year, block.first, block.last, requestId, this.stamp());
      return block;
    });
  }

  upload(seller: string, records: unknown): { outcomes: WireOutcome[]; wait_seconds: number } {
    if (!Array.isArray(records) || records.length === 0) throw new SandboxError(400, 'BAD_REQUEST', 'records: a non-empty array');
    if (records.length > MAX_RECORDS_PER_UPLOAD) throw new SandboxError(413, 'BATCH_TOO_LARGE', `at most ${MAX_RECORDS_PER_UPLOAD} records per upload, got ${records.length}`);
    const flow = this.faults.active('flow_control');
    const doubled = this.faults.hits('double_ack');
    return writeTx(this.db, () => {
      let waitSeconds = 0;
      if (flow) {
        const now = this.now();
        const gate = this.sql('select next_allowed_at from flow where seller = ?').get(seller) as { next_allowed_at: number } | undefined;
        if (gate && gate.next_allowed_at > now) {
          const wait = Math.ceil((gate.next_allowed_at - now) / 1000);
          throw new SandboxError(429, 'FLOW_CONTROL', `submitted before the wait asked for; wait ${wait} s`, wait);
        }
        waitSeconds = flow.waitSeconds ?? 2;
        this.sql('insert into flow (seller, next_allowed_at) values (?, ?) on conflict (seller) do update set next_allowed_at = excluded.next_allowed_at').run(seller, now + waitSeconds * 1000);
      }
      const outcomes = records.map((r) => this.take(seller, r, 'submissions'));
      // Delivered twice: the second delivery meets what the first stored.
      if (doubled) outcomes.push(...records.map((r) => this.take(seller, r, 'echoes')));
      return { outcomes, wait_seconds: waitSeconds };
    });
  }

  private take(seller: string, raw: unknown, countAs: 'submissions' | 'echoes'): WireOutcome {
    const invalid = recordProblem(raw);
    const number = typeof (raw as WireRecord)?.number === 'string' ? (raw as WireRecord).number.slice(0, 40) : '';
    if (invalid) {
      if (number) this.count(seller, number, countAs === 'echoes' ? 'echoes' : 'submissions', 'rejections');
      return { number, result: 'rejected', reason_code: 'INVALID_RECORD', reason: invalid };
    }
    const record = raw as WireRecord;
    this.count(seller, number, countAs);
    if (countAs === 'submissions' && this.faults.hits('partial')) {
      this.count(seller, number, null, 'failed');
      return { number, result: 'failed', reason_code: 'PARTIAL_FAILURE', reason: 'not processed this time (sandbox fault "partial"); send it again' };
    }
    const held = this.sql('select digest from invoices where seller = ? and number = ?').get(seller, number) as { digest: string } | undefined;
    if (held) {
      if (held.digest === record.digest) {
        if (countAs === 'submissions') this.count(seller, number, null, 'duplicates');
        return { number, result: 'duplicate' };
      }
      this.count(seller, number, null, 'conflicts');
      return { number, result: 'conflict', reason_code: 'DIGEST_CONFLICT', reason: 'the tax service holds this number with another digest', held_digest: held.digest };
    }
    const rule = this.faults.active('reject');
    if (rule && (!rule.kind || rule.kind === record.kind) && (!rule.minAmountFen || BigInt(record.total_amount_fen) >= BigInt(rule.minAmountFen)) && Math.random() < rule.rate) {
      const reason = rule.minAmountFen ? `amount at or above ${rule.minAmountFen} fen refused by a sandbox rule (fault "reject")` : 'rejected by a sandbox rule (fault "reject")';
      this.sql('insert into rejections (seller, number, reason_code, reason, at) values (?, ?, ?, ?, ?) on conflict (seller, number) do update set reason_code = excluded.reason_code, reason = excluded.reason, at = excluded.at')
        .run(seller, number, 'SANDBOX_RULE', reason, this.stamp());
      this.count(seller, number, null, 'rejections');
      return { number, result: 'rejected', reason_code: 'SANDBOX_RULE', reason };
    }
    this.sql(`insert into invoices (seller, number, digest, kind, issued_at, issue_date, buyer_tax_id, total_amount_fen, total_tax_fen, content, accepted_at)
      values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(seller, number, record.digest, record.kind, record.issued_at, record.issued_at.slice(0, 10), record.buyer_tax_id, record.total_amount_fen, record.total_tax_fen, record.content, this.stamp());
    this.sql('delete from rejections where seller = ? and number = ?').run(seller, number);
    this.count(seller, number, null, 'accepted');
    return { number, result: 'accepted' };
  }

  private count(seller: string, number: string, ...columns: Array<keyof UploadCounter | null>): void {
    for (const column of columns) {
      if (!column) continue;
      this.sql(`insert into counters (seller, number, ${column}) values (?, ?, 1) on conflict (seller, number) do update set ${column} = ${column} + 1`).run(seller, number);
    }
  }

  /**
   * Voids an invoice the tax service holds (作废). Idempotent: a repeat answers already_voided with the
   * first void's time. Refused: an invoice not held (never uploaded, or rejected), one voided after
   * its month of issue, or by the `reject` fault. `double_ack` applies it twice (the second is the
   * answer, counted as an echo); `partial` leaves it unprocessed (failed).
   */
  voidInvoice(seller: string, number: string, body: { reason?: unknown; voided_at?: unknown } | undefined): WireVoidAnswer {
    const reason = body?.reason;
    const voidedAt = body?.voided_at;
    if (typeof reason !== 'string' || reason.length === 0 || reason.length > 800) throw new SandboxError(400, 'BAD_REQUEST', 'reason: 1-800 characters');
    if (typeof voidedAt !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(voidedAt)) throw new SandboxError(400, 'BAD_REQUEST', 'voided_at: an ISO timestamp');
    const doubled = this.faults.hits('double_ack');
    return writeTx(this.db, () => {
      this.count(seller, number, 'void_requests');
      if (this.faults.hits('partial')) return { number, result: 'failed', reason_code: 'PARTIAL_FAILURE', reason: 'not processed this time (sandbox fault "partial"); send it again' };
      const first = this.applyVoid(seller, number, reason, voidedAt);
      if (!doubled) return first;
      this.count(seller, number, 'echoes');
      return this.applyVoid(seller, number, reason, voidedAt);
    });
  }

  private applyVoid(seller: string, number: string, reason: string, voidedAt: string): WireVoidAnswer {
    const earlier = this.sql('select voided_at from voids where seller = ? and number = ?').get(seller, number) as { voided_at: string } | undefined;
    if (earlier) return { number, result: 'already_voided', voided_at: earlier.voided_at };
    const refuse = (code: string, why: string): WireVoidAnswer => {
      this.count(seller, number, 'void_refusals');
      return { number, result: 'refused', reason_code: code, reason: why };
    };
    const held = this.sql('select issued_at from invoices where seller = ? and number = ?').get(seller, number) as { issued_at: string } | undefined;
    if (!held) return refuse('INVOICE_UNKNOWN', 'the tax service holds no accepted invoice with this number (never uploaded, or rejected)');
    if (held.issued_at.slice(0, 7) !== voidedAt.slice(0, 7)) return refuse('VOID_PERIOD_CLOSED', `issued in ${held.issued_at.slice(0, 7)}: a void is allowed only in the month of issue; reverse it with a red-letter invoice`);
    const rule = this.faults.active('reject');
    if (rule && Math.random() < rule.rate) return refuse('SANDBOX_RULE', 'void refused by a sandbox rule (fault "reject")');
    this.sql('insert into voids (seller, number, reason, voided_at, recorded_at) values (?, ?, ?, ?, ?)').run(seller, number, reason, voidedAt, this.stamp());
    this.count(seller, number, 'voids');
    return { number, result: 'voided', voided_at: voidedAt };
  }

  status(seller: string, number: string): { number: string; known: boolean; digest?: string; state?: 'accepted' | 'rejected' | 'voided'; reason?: string; voided_at?: string } {
    const held = this.sql('select i.digest, v.voided_at from invoices i left join voids v on v.seller = i.seller and v.number = i.number where i.seller = ? and i.number = ?')
      .get(seller, number) as { digest: string; voided_at: string | null } | undefined;
    if (held?.voided_at) return { number, known: true, digest: held.digest, state: 'voided', voided_at: held.voided_at };
    if (held) return { number, known: true, digest: held.digest, state: 'accepted' };
    const rejected = this.sql('select reason_code, reason from rejections where seller = ? and number = ?').get(seller, number) as { reason_code: string; reason: string } | undefined;
    if (rejected) return { number, known: true, state: 'rejected', reason: `${rejected.reason_code}: ${rejected.reason}` };
    return { number, known: false };
  }

  /** The status of each number asked (at most MAX_NUMBERS_PER_STATUS_QUERY), in the order asked. */
  statuses(seller: string, numbers: unknown): Array<ReturnType<Ledger['status']>> {
    if (!Array.isArray(numbers) || numbers.length === 0 || !numbers.every((n) => typeof n === 'string' && n.length > 0 && n.length <= 40)) {
      throw new SandboxError(400, 'BAD_REQUEST', 'numbers: a non-empty array of invoice numbers');
    }
    if (numbers.length > MAX_NUMBERS_PER_STATUS_QUERY) throw new SandboxError(413, 'BATCH_TOO_LARGE', `at most ${MAX_NUMBERS_PER_STATUS_QUERY} numbers per status query, got ${numbers.length}`);
    return (numbers as string[]).map((number) => this.status(seller, number));
  }

  /** Accepted invoices of one issue date (开票日期, Shanghai), by number, a page at a time. */
  acceptedOn(seller: string, date: string, cursor: string | undefined, limit = 1000): { invoices: Array<{ number: string; digest: string; accepted_at: string }>; next: string | null } {
    const rows = this.sql('select number, digest, accepted_at from invoices where seller = ? and issue_date = ? and number > ? order by number limit ?')
      .all(seller, date, cursor ?? '', limit + 1) as Array<{ number: string; digest: string; accepted_at: string }>;
    const page = rows.slice(0, limit);
    return { invoices: page, next: rows.length > limit ? page.at(-1)!.number : null };
  }

  terms(seller: string): WireTerms {
    const row = this.sql('select terms from terms where seller = ?').get(seller) as { terms: string } | undefined;
    return row ? (JSON.parse(row.terms) as WireTerms) : DEFAULT_TERMS;
  }

  setTerms(seller: string, terms: WireTerms): void {
    this.sql('insert into terms (seller, terms) values (?, ?) on conflict (seller) do update set terms = excluded.terms').run(seller, JSON.stringify(terms));
  }

  counters(filter: { seller?: string; number?: string }): UploadCounter[] {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.seller) (where.push('c.seller = ?'), args.push(filter.seller));
    if (filter.number) (where.push('c.number = ?'), args.push(filter.number));
    return this.sql(`select c.*, i.digest, i.accepted_at, v.recorded_at as voided_recorded_at from counters c
      left join invoices i on i.seller = c.seller and i.number = c.number left join voids v on v.seller = c.seller and v.number = c.number
      ${where.length ? `where ${where.join(' and ')}` : ''} order by c.seller, c.number`).all(...args) as UploadCounter[];
  }

  /** Prepared once per text: preparing costs more than running these statements. */
  private sql(text: string): SQLite.Statement<unknown[]> {
    let statement = this.statements.get(text);
    if (!statement) this.statements.set(text, (statement = this.db.prepare(text)));
    return statement;
  }

  private stamp(): string {
    return shanghaiTimestamp(new Date(this.now()));
  }
}

/** What is wrong with a record as sent, or undefined. The digest must be the SHA-256 of the content. */
function recordProblem(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return 'a record is an object';
  const r = raw as Record<string, unknown>;
  for (const field of ['number', 'kind', 'issued_at', 'buyer_tax_id', 'total_amount_fen', 'total_tax_fen', 'digest', 'content']) {
    if (typeof r[field] !== 'string') return `${field}: a string is required`;
  }
  const record = r as unknown as WireRecord;
  if (!/^\d{8,20}$/.test(record.number)) return 'number: 8-20 digits';
  if (record.kind !== 'normal' && record.kind !== 'special') return 'kind: normal or special';
  if (!/^\d{4}-\d{2}-\d{2}T/.test(record.issued_at)) return 'issued_at: an ISO timestamp';
  if (!/^-?\d{1,18}$/.test(record.total_amount_fen) || !/^-?\d{1,18}$/.test(record.total_tax_fen)) return 'total_amount_fen, total_tax_fen: integer fen as decimal strings';
  if (!/^[0-9a-f]{64}$/.test(record.digest)) return 'digest: 64 lowercase hex digits';
  if (createHash('sha256').update(record.content).digest('hex') !== record.digest) return 'digest: not the SHA-256 of content';
  return undefined;
}

export { shanghaiDate };
