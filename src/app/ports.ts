// What the use cases need from the outside world. The store implements these on SQLite (and
// PostgreSQL); tests and benchmarks use the same real implementations.
import type { Clock } from '../domain/time.js';
import type { Invoice, InvoiceKind, InvoiceStatus } from '../domain/invoice.js';
import type { Role } from '../domain/access.js';
import type { AuditFields } from '../domain/audit-chain.js';
import type { UpstreamRepositories } from './upstream-ports.js';
import type { BlockAdvance, OpenBlock, UploadJob, UploadRepositories } from './upload-ports.js';
import type { ContingencyLimits } from '../domain/contingency.js';
import type { DocumentRepositories, InvoiceSigner } from './document-ports.js';
import type { DeliveryRepositories } from './delivery-ports.js';

export interface MerchantRecord {
  id: string;
  name: string;
  taxId: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
  regionCode: string;
  dailyInvoiceLimit: number | null;
  /** The operator's own limit of pre-tax fen per calendar month; null = none. */
  operatorCreditFen: bigint | null;
  /** 授信额度 the tax service grants in its terms, pre-tax fen per calendar month; null = none. The lower of the two binds (domain/credit-line.ts). */
  grantedCreditFen: bigint | null;
  createdAt: string;
  /** 离线开票 limits per kind from the tax service's terms; null/absent = never fetched (no limits). */
  contingency?: ContingencyLimits[] | null;
  termsFetchedAt?: string | null;
  /** In contingency (离线) since then; null/absent = online. The offline limits apply only then. */
  offlineSince?: string | null;
}

export interface UsageChange {
  period: string;
  invoiceCount: number;
  preTaxFen: bigint;
}

export interface UsageCounters {
  period: string;
  invoiceCount: number;
  preTaxFen: bigint;
  /** The oldest moment still counted (a backlog's oldest un-uploaded invoice). */
  since: string | null;
}

export interface ChainHead {
  scope: string;
  hash: string;
  index: number;
}

export interface InvoiceFilter {
  dateFrom?: string;
  dateTo?: string;
  buyerName?: string;
  buyerTaxId?: string;
  minTotal?: bigint;
  maxTotal?: bigint;
  status?: InvoiceStatus;
  kind?: InvoiceKind;
  /** Only invoices earlier in the chain than this index (cursor pagination, newest first). */
  beforeIndex?: number;
}

export interface IdempotencyRecord {
  merchantId: string;
  key: string;
  requestHash: string;
  invoiceNumber: string;
  createdAt: string;
}

export interface AuditEntry extends AuditFields {
  prevHash: string;
  hash: string;
}

export interface OutboxJob {
  id: number;
  merchantId: string;
  topic: string;
  subject: string;
  payload: string;
  attempts: number;
}

export interface UserRecord {
  id: string;
  merchantId: string;
  username: string;
  passwordHash: string;
  role: Role;
  failedAttempts: number;
  lockedUntil: string | null;
  createdAt: string;
}

export interface ApiKeyRecord {
  id: string;
  merchantId: string;
  role: Role;
  label: string;
  secretHash: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface SavedBuyer {
  id: string;
  name: string;
  taxId: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
  email: string;
  updatedAt: string;
}

export interface SavedItem {
  id: string;
  name: string;
  taxCode: string;
  spec: string;
  unit: string;
  unitPrice: string;
  taxRate: string;
  updatedAt: string;
}

/**
 * Everything an issue batch writes once it has decided: the invoices, how far the number blocks
 * got, the usage counters (with `at` starting a period's `since`), idempotency keys, upload jobs,
 * audit entries (already chained) and the chains' new heads.
 */
export interface IssueWrites {
  merchantId: string;
  at: string;
  invoices: readonly Invoice[];
  blocks: readonly BlockAdvance[];
  usage: readonly UsageChange[];
  keys: readonly IdempotencyRecord[];
  uploads: readonly UploadJob[];
  audit: readonly AuditEntry[];
  heads: readonly ChainHead[];
}

/** What an issue batch reads once it holds its merchant's lock. */
export interface IssueContextQuery {
  merchantId: string;
  /** The usage counters its limits may need (IssueAllowance.periodsOf). */
  periods: readonly string[];
  /** The year whose open number blocks it takes numbers from. */
  year: number;
  /** The chains it extends; their heads are locked. */
  scopes: readonly string[];
}

export interface IssueContext {
  /** The merchant as it is now (its lock is held); undefined when there is no such merchant. */
  merchant: MerchantRecord | undefined;
  /** Each period asked for (zero when never counted). */
  usage: Map<string, UsageCounters>;
  /** Oldest first. */
  blocks: OpenBlock[];
  /** One per scope asked for, in that order. */
  heads: ChainHead[];
}

export interface Repositories extends UpstreamRepositories, DeliveryRepositories, DocumentRepositories, UploadRepositories {
  issues: {
    /**
     * Reads what a batch decides on, the merchant included; call it after merchants.hold, so all of
     * it is current. On PostgreSQL in one statement, which goes out with the hold: one round trip
     * for the lock and everything read under it (the merchant, each counter, blocks, heads).
     */
    context(query: IssueContextQuery): Promise<IssueContext>;
    /** Writes a decided batch: on PostgreSQL in one statement, one round trip under the merchant's lock. */
    store(writes: IssueWrites): Promise<void>;
  };
  merchants: {
    /**
     * Reads the merchant and serialises its writes across instances (a row lock on PostgreSQL;
     * SQLite's write lock is already held). Take it first, so everything read after it is current.
     */
    lock(id: string): Promise<MerchantRecord | undefined>;
    /**
     * Takes the same lock without reading the merchant. On PostgreSQL the statement goes out with
     * the transaction's next one (pg-send-with-next.ts), which runs once the lock is granted: the
     * lock costs no exchange of its own, while every issue of the merchant waits for it.
     */
    hold(id: string): Promise<void>;
    insert(merchant: MerchantRecord): Promise<void>;
    get(id: string): Promise<MerchantRecord | undefined>;
    findByTaxId(taxId: string): Promise<MerchantRecord | undefined>;
    list(): Promise<MerchantRecord[]>;
    /** The operator's limits; the tax service's grant is written with its terms (`terms.save`). */
    setLimits(id: string, limits: { dailyInvoiceLimit: number | null; operatorCreditFen: bigint | null }): Promise<void>;
  };
  /** Gap-free numbering: the increment rolls back with the transaction it is part of. */
  series: { next(merchantId: string, year: number): Promise<number> };
  chain: {
    /** The heads of these chains, in the order asked (a chain never written starts at genesis). */
    heads(scopes: readonly string[]): Promise<ChainHead[]>;
    advance(heads: readonly ChainHead[]): Promise<void>;
  };
  invoices: {
    /** Stores new invoices, many rows per statement. */
    insert(invoices: readonly Invoice[]): Promise<void>;
    get(merchantId: string, number: string): Promise<Invoice | undefined>;
    list(merchantId: string, filter: InvoiceFilter, limit: number): Promise<Invoice[]>;
    count(merchantId: string): Promise<number>;
    setStatus(merchantId: string, number: string, change: { status: InvoiceStatus; at: string; reason: string | null }): Promise<void>;
    /** The merchant's invoices in chain order, a page at a time. */
    chainPage(merchantId: string, afterIndex: number, limit: number): Promise<Invoice[]>;
  };
  idempotency: {
    /** The merchant's records of these keys, by key (keys never used are absent). */
    find(merchantId: string, keys: readonly string[]): Promise<Map<string, IdempotencyRecord>>;
    insert(records: readonly IdempotencyRecord[]): Promise<void>;
    purgeBefore(at: string): Promise<number>;
  };
  usage: {
    get(merchantId: string, period: string): Promise<UsageCounters>;
    /**
     * Adds to the counters of the periods given (a day, its month, a kind's upload backlog), in one
     * statement. `at` starts a period's `since` if it has none.
     */
    add(merchantId: string, changes: ReadonlyArray<UsageChange>, at?: string): Promise<void>;
  };
  audit: {
    /** Appends already chained entries, many rows per statement. */
    append(entries: readonly AuditEntry[]): Promise<void>;
    page(merchantId: string, afterId: number, limit: number): Promise<Array<AuditEntry & { id: number }>>;
  };
  /**
   * Work to do after a commit (upload to the tax service, deliveries), shared by every instance
   * through leases: a claimed job is invisible to others until its lease runs out, so the work of
   * an instance that died is picked up by another.
   */
  outbox: {
    enqueue(job: { merchantId: string; topic: string; subject: string; payload: string; at: string }): Promise<void>;
    /** Whether a job of this topic could be claimed at `now` (a cheap read before claiming). */
    hasDue(topic: string, now: string): Promise<boolean>;
    claim(request: { topic: string; owner: string; now: string; leaseUntil: string; limit: number }): Promise<OutboxJob[]>;
    /** Marks a job done; false when the caller no longer holds its lease (another took it over). */
    complete(id: number, owner: string, at: string): Promise<boolean>;
    /** Gives a job back to be tried again from `availableAt`; false when the lease was lost. */
    release(id: number, owner: string, availableAt: string): Promise<boolean>;
  };
  users: {
    insert(user: UserRecord): Promise<void>;
    get(id: string): Promise<UserRecord | undefined>;
    findByUsername(username: string): Promise<UserRecord | undefined>;
    setLoginState(id: string, state: { failedAttempts: number; lockedUntil: string | null }): Promise<void>;
    setPasswordHash(id: string, passwordHash: string): Promise<void>;
  };
  sessions: {
    insert(session: { tokenHash: string; userId: string; expiresAt: string; createdAt: string }): Promise<void>;
    find(tokenHash: string): Promise<{ userId: string; expiresAt: string } | undefined>;
    delete(tokenHash: string): Promise<void>;
    purgeExpired(at: string): Promise<number>;
  };
  apiKeys: {
    insert(key: ApiKeyRecord): Promise<void>;
    get(id: string): Promise<ApiKeyRecord | undefined>;
    list(merchantId: string): Promise<ApiKeyRecord[]>;
    revoke(merchantId: string, id: string, at: string): Promise<boolean>;
  };
  savedBuyers: {
    upsert(merchantId: string, buyer: SavedBuyer): Promise<SavedBuyer>;
    list(merchantId: string, search: string | undefined, limit: number): Promise<SavedBuyer[]>;
    delete(merchantId: string, id: string): Promise<boolean>;
  };
  heartbeat(instance: string, at: string): Promise<void>;
  savedItems: {
    upsert(merchantId: string, item: SavedItem): Promise<SavedItem>;
    list(merchantId: string, search: string | undefined, limit: number): Promise<SavedItem[]>;
    delete(merchantId: string, id: string): Promise<boolean>;
  };
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Whether issuing reads its requests' Idempotency-Keys before it asks for the merchant's lock.
   * On PostgreSQL every statement under the lock is a round trip the other instances wait for, and a
   * key another request stores in between fails the batch's write with a unique violation, which
   * `write` retries (the keys are then read under the lock). On SQLite a read under the lock costs no
   * round trip, and a key raced in between would fail the whole batch.
   */
  readonly readsKeysBeforeLock: boolean;
  /** Runs `work` in one transaction; resolves only after the commit is durable. */
  write<T>(work: (tx: Repositories) => Promise<T>): Promise<T>;
  /** Reads committed data; never blocks behind writers. */
  readonly read: Repositories;
  /** Proves the database is reachable and writable (for /readyz). */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}

export interface Ports {
  store: Store;
  clock: Clock;
  /** Signs invoices as they are issued (R22); without it invoices are stored unsigned. */
  signer?: InvoiceSigner;
}
