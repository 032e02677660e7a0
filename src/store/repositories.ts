// Repositories over Kysely. The same code runs on a transaction or on the read connection, on
// SQLite and on PostgreSQL; dialect differences stay in database.ts.
import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { Database, InvoiceTable } from './schema.js';
import type { Repositories, IdempotencyRecord, MerchantRecord, UserRecord, ApiKeyRecord, SavedBuyer, SavedItem, InvoiceFilter, ChainHead, UsageCounters } from '../app/ports.js';
import type { Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, Buyer, Party } from '../domain/invoice.js';
import { GENESIS_HASH } from '../domain/invoice.js';
import type { VoidReportState } from '../domain/void-report.js';
import type { Role } from '../domain/access.js';
import { hot, selectMerchants, type MerchantRow } from './hot-queries.js';
import { sendWithNext } from './pg-send-with-next.js';
import { registerStatement } from './prepared.js';
import { issueWrites } from './issue-writes.js';
import { upstreamRepositories } from './upstream-repositories.js';
import { uploadRepositories } from './upload-repositories.js';
import { parseContingencyTerms } from '../domain/contingency.js';
import { documentRepositories } from './document-repositories.js';
import { deliveryRepositories } from './delivery-repositories.js';

type Db = Kysely<Database>;

type Dialect = 'sqlite' | 'postgres';

export function repositories(db: Db, dialect: Dialect): Repositories {
  // Inside a PostgreSQL transaction, rows that order a merchant's history are read FOR UPDATE so
  // that two instances cannot both extend the same chain.
  const locking = dialect === 'postgres' && db.isTransaction;
  // Built for every transaction. The spreads come last (their keys are all different from these): an
  // object literal that adds properties after a spread gets a new hidden class every time in Node
  // 20's V8 (see invoiceContent in domain/invoice.ts), which made this 62 µs instead of 1.2.
  const base: Omit<Repositories, 'issues'> = {
    merchants: merchants(db, dialect, locking),
    series: {
      async next(merchantId, year) {
        // UPDATE … RETURNING takes the row lock on PostgreSQL, serialising numbering per merchant.
        const [bumped] = (await hot.nextSequence.execute(db, dialect, { merchantId, year })).rows;
        if (bumped) return Number(bumped.last_sequence);
        await db.insertInto('invoice_series').values({ merchant_id: merchantId, year, last_sequence: 1 }).execute();
        return 1;
      },
    },
    chain: {
      async heads(scopes) {
        const queries = hot.chainHeads[scopes.length - 1];
        if (!queries) throw new RangeError(`at most ${hot.chainHeads.length} chains at once`);
        const { rows } = await (locking ? queries.forUpdate : queries.plain).execute(db, dialect, numbered('scope', scopes));
        return scopes.map((scope) => chainHead(scope, rows.find((r) => r.scope === scope)));
      },
      async advance(heads) {
        const query = hot.chainHeads[heads.length - 1];
        if (!query) throw new RangeError(`at most ${hot.chainHeads.length} chains at once`);
        const args = heads.reduce<Record<string, unknown>>((all, head, i) => ({ ...all, [`scope${i}`]: head.scope, [`hash${i}`]: head.hash, [`length${i}`]: head.index }), {});
        await query.advance.execute(db, dialect, args);
      },
    },
    invoices: invoices(db, dialect),
    idempotency: {
      async find(merchantId, keys) {
        const rows = dialect === 'postgres'
          ? (await db.executeQuery<IdempotencyRow>(CompiledQuery.raw(FIND_KEYS_ON_POSTGRES, [merchantId, keys]))).rows
          : await hot.findIdempotencyKeys.execute(db, dialect, keys.map((key) => ({ key })), { merchantId });
        return new Map(rows.map((row): [string, IdempotencyRecord] => [row.key, { merchantId, key: row.key, requestHash: row.request_hash, invoiceNumber: row.invoice_number, createdAt: row.created_at }]));
      },
      async insert(records) {
        await hot.insertIdempotencyKeys.execute(db, dialect, records);
      },
      async purgeBefore(at) {
        const result = await db.deleteFrom('idempotency_keys').where('created_at', '<', at).executeTakeFirst();
        return Number(result.numDeletedRows);
      },
    },
    usage: {
      async get(merchantId, period) {
        const [row] = (await hot.usage.execute(db, dialect, { merchantId, period })).rows;
        return usageCounters(period, row);
      },
      async add(merchantId, changes, at) {
        await hot.addUsage.execute(db, dialect, changes.map((c) => ({ merchantId, period: c.period, count: c.invoiceCount, fen: c.preTaxFen.toString(), at: at ?? null })));
      },
    },
    audit: {
      async append(entries) {
        await hot.appendAudit.execute(db, dialect, entries);
      },
      async page(merchantId, afterId, limit) {
        const rows = await db.selectFrom('audit_log').selectAll().where('merchant_id', '=', merchantId).where('id', '>', afterId).orderBy('id').limit(limit).execute();
        return rows.map((r) => ({ id: Number(r.id), merchantId: r.merchant_id, at: r.at, actor: r.actor, action: r.action, subject: r.subject, detail: r.detail, prevHash: r.prev_hash, hash: r.hash }));
      },
    },
    outbox: outbox(db, dialect),
    users: users(db),
    sessions: {
      async insert(s) {
        await db.insertInto('sessions').values({ token_hash: s.tokenHash, user_id: s.userId, expires_at: s.expiresAt, created_at: s.createdAt }).execute();
      },
      async find(tokenHash) {
        const row = await db.selectFrom('sessions').select(['user_id', 'expires_at']).where('token_hash', '=', tokenHash).executeTakeFirst();
        return row && { userId: row.user_id, expiresAt: row.expires_at };
      },
      async delete(tokenHash) {
        await db.deleteFrom('sessions').where('token_hash', '=', tokenHash).execute();
      },
      async purgeExpired(at) {
        const result = await db.deleteFrom('sessions').where('expires_at', '<', at).executeTakeFirst();
        return Number(result.numDeletedRows);
      },
    },
    apiKeys: apiKeys(db, dialect),
    async heartbeat(instance, at) {
      await db.insertInto('heartbeats').values({ instance, at }).onConflict((oc) => oc.column('instance').doUpdateSet({ at })).execute();
    },
    savedBuyers: savedBuyers(db),
    savedItems: savedItems(db),
    ...upstreamRepositories(db),
    ...uploadRepositories(db, dialect),
    ...documentRepositories(db, dialect, rowToInvoice),
    ...deliveryRepositories(db, dialect),
  };
  return { issues: issueWrites(db, dialect, base), ...base };
}

function outbox(db: Db, dialect: Dialect): Repositories['outbox'] {
  return {
    async enqueue(job) {
      await hot.enqueueOutbox.execute(db, dialect, job);
    },
    async hasDue(topic, now) {
      const row = await db
        .selectFrom('outbox')
        .select('id')
        .where('topic', '=', topic)
        .where('done_at', 'is', null)
        .where('available_at', '<=', now)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
    async claim({ topic, owner, now, leaseUntil, limit }) {
      // PostgreSQL: instances claim side by side, each skipping rows another is claiming.
      // SQLite: the write lock already makes claims one at a time.
      const due = db
        .selectFrom('outbox')
        .select('id')
        .where('topic', '=', topic)
        .where('done_at', 'is', null)
        .where('available_at', '<=', now)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .orderBy('id')
        .limit(limit);
      const rows = await db
        .updateTable('outbox')
        .set({ lease_owner: owner, lease_until: leaseUntil, attempts: sql`attempts + 1` })
        .where('id', 'in', dialect === 'postgres' ? due.forUpdate().skipLocked() : due)
        .returning(['id', 'merchant_id', 'topic', 'subject', 'payload', 'attempts'])
        .execute();
      return rows
        .map((r) => ({ id: Number(r.id), merchantId: r.merchant_id, topic: r.topic, subject: r.subject, payload: r.payload, attempts: Number(r.attempts) }))
        .sort((a, b) => a.id - b.id);
    },
    async complete(id, owner, at) {
      const result = await db.updateTable('outbox').set({ done_at: at, lease_until: null }).where('id', '=', id).where('lease_owner', '=', owner).where('done_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async release(id, owner, availableAt) {
      const result = await db
        .updateTable('outbox')
        .set({ lease_owner: null, lease_until: null, available_at: availableAt })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .where('done_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}

/** A chain's head from its row; a chain without one has not begun. */
export function chainHead(scope: string, row: { hash: string; length: number | string } | undefined): ChainHead {
  return row ? { scope, hash: row.hash, index: Number(row.length) } : { scope, hash: GENESIS_HASH, index: 0 };
}

/** A period's usage counters from their row; a period without one has counted nothing yet. */
export function usageCounters(period: string, row?: { invoice_count: number | string; pre_tax_fen: number | string; since: string | null }): UsageCounters {
  return row ? { period, invoiceCount: Number(row.invoice_count), preTaxFen: BigInt(row.pre_tax_fen), since: row.since } : { period, invoiceCount: 0, preTaxFen: 0n, since: null };
}

/** { scope0: a, scope1: b } from ('scope', [a, b]): the argument names of the prepared queries. */
function numbered(name: string, values: readonly string[]): Record<string, string> {
  return Object.fromEntries(values.map((value, i) => [`${name}${i}`, value]));
}

/** An optional fen amount as its column holds it (bigint as decimal text on both drivers). */
const fenColumn = (value: bigint | null) => (value === null ? null : value.toString());

// Each key looked up on its own (LATERAL … LIMIT 1, which PostgreSQL cannot turn into a join): asked
// as `merchant_id = $1 and key in (…)`, a planner that guessed the merchant had few keys (no
// statistics yet, or a merchant outside the sampled common values) read every key the merchant
// holds and filtered them: 2 ms at 9,000 keys, growing with them (test/integration/pg-key-lookups.test.ts).
export const FIND_KEYS_ON_POSTGRES = `
select k.key, i.request_hash, i.invoice_number, i.created_at
from unnest($2::text[]) as k(key)
cross join lateral (select request_hash, invoice_number, created_at from idempotency_keys where merchant_id = $1 and key = k.key limit 1) as i`;
registerStatement(FIND_KEYS_ON_POSTGRES);
type IdempotencyRow = Pick<Database['idempotency_keys'], 'key' | 'request_hash' | 'invoice_number' | 'created_at'>;

/** `merchants.hold` on PostgreSQL: nothing to answer, so it goes out with the next statement. */
const HOLD_MERCHANT = 'select 1 from merchants where id = $1 for update';
sendWithNext(HOLD_MERCHANT);

/** A merchants row (`selectMerchants`: fen amounts as text) as the application sees it. */
export const merchantRecord = (r: MerchantRow): MerchantRecord => ({
  id: r.id,
  name: r.name,
  taxId: r.tax_id,
  address: r.address,
  phone: r.phone,
  bank: r.bank,
  account: r.account,
  regionCode: r.region_code,
  dailyInvoiceLimit: r.daily_invoice_limit === null ? null : Number(r.daily_invoice_limit),
  operatorCreditFen: r.operator_credit_fen === null ? null : BigInt(r.operator_credit_fen),
  grantedCreditFen: r.granted_credit_fen === null ? null : BigInt(r.granted_credit_fen),
  createdAt: r.created_at,
  contingency: parseContingencyTerms(r.contingency_terms ?? null),
  termsFetchedAt: r.terms_fetched_at ?? null,
  offlineSince: r.offline_since ?? null,
});

function merchants(db: Db, dialect: Dialect, locking: boolean): Repositories['merchants'] {
  return {
    async hold(id) {
      if (locking) await db.executeQuery(CompiledQuery.raw(HOLD_MERCHANT, [id])); // SQLite: its write lock is held already
    },
    async lock(id) {
      const [row] = (await (locking ? hot.merchantForUpdate : hot.merchant).execute(db, dialect, { id })).rows;
      return row && merchantRecord(row);
    },
    async insert(m) {
      await db
        .insertInto('merchants')
        .values({
          id: m.id, name: m.name, tax_id: m.taxId, address: m.address, phone: m.phone, bank: m.bank, account: m.account,
          region_code: m.regionCode, daily_invoice_limit: m.dailyInvoiceLimit,
          operator_credit_fen: fenColumn(m.operatorCreditFen), granted_credit_fen: fenColumn(m.grantedCreditFen), created_at: m.createdAt,
        })
        .execute();
    },
    async get(id) {
      const [row] = (await hot.merchant.execute(db, dialect, { id })).rows;
      return row && merchantRecord(row);
    },
    async findByTaxId(taxId) {
      const row = await selectMerchants(db).where('tax_id', '=', taxId).executeTakeFirst();
      return row && merchantRecord(row);
    },
    async list() {
      return (await selectMerchants(db).orderBy('created_at').orderBy('id').execute()).map(merchantRecord);
    },
    async setLimits(id, limits) {
      await db
        .updateTable('merchants')
        .set({ daily_invoice_limit: limits.dailyInvoiceLimit, operator_credit_fen: fenColumn(limits.operatorCreditFen) })
        .where('id', '=', id)
        .execute();
    },
  };
}

/** Everything of an invoice that is not a column of its own. */
interface StoredContent {
  pricesIncludeTax: boolean;
  remarks: string;
  issuer: string;
  seller: Party;
  buyer: Buyer;
  lines: Array<Omit<InvoiceLine, 'amount' | 'tax'> & { amount: string; tax: string }>;
}

export function invoiceToRow(i: Invoice): InvoiceTable {
  const content: StoredContent = {
    pricesIncludeTax: i.pricesIncludeTax,
    remarks: i.remarks,
    issuer: i.issuer,
    seller: i.seller,
    buyer: i.buyer,
    lines: i.lines.map((l) => ({ ...l, amount: l.amount.toString(), tax: l.tax.toString() })),
  };
  return {
    merchant_id: i.merchantId,
    number: i.number,
    kind: i.kind,
    status: i.status,
    issued_at: i.issuedAt,
    issue_date: i.issuedAt.slice(0, 10),
    buyer_name: i.buyer.name,
    buyer_tax_id: i.buyer.taxId,
    total_amount: i.totalAmount.toString(),
    total_tax: i.totalTax.toString(),
    total_with_tax: i.totalWithTax.toString(),
    content: JSON.stringify(content),
    digest: i.digest,
    prev_hash: i.prevHash,
    chain_hash: i.chainHash,
    chain_index: i.chainIndex,
    void_reason: i.voidReason,
    status_changed_at: i.statusChangedAt,
    signature: i.signature?.value ?? null,
    signing_key_id: i.signature?.keyId ?? null,
  };
}

// Columns win over the JSON body for the fields that have both, so that a change to either
// one shows up as a digest mismatch in `chain verify`.
export function rowToInvoice(r: InvoiceTable): Invoice {
  const c = JSON.parse(r.content) as StoredContent;
  return {
    merchantId: r.merchant_id,
    number: r.number,
    kind: r.kind as InvoiceKind,
    status: r.status as InvoiceStatus,
    issuedAt: r.issued_at,
    pricesIncludeTax: c.pricesIncludeTax,
    remarks: c.remarks,
    issuer: c.issuer,
    seller: c.seller,
    buyer: { ...c.buyer, name: r.buyer_name, taxId: r.buyer_tax_id },
    lines: c.lines.map((l) => ({ ...l, amount: BigInt(l.amount), tax: BigInt(l.tax) })),
    totalAmount: BigInt(r.total_amount),
    totalTax: BigInt(r.total_tax),
    totalWithTax: BigInt(r.total_with_tax),
    digest: r.digest,
    prevHash: r.prev_hash,
    chainHash: r.chain_hash,
    chainIndex: Number(r.chain_index),
    voidReason: r.void_reason,
    statusChangedAt: r.status_changed_at,
    signature: r.signature && r.signing_key_id ? { keyId: r.signing_key_id, value: r.signature } : null,
    // Present only where set, so an invoice read back equals the one issued.
    ...(r.uploaded_at && { uploadedAt: r.uploaded_at }),
    ...(r.void_report && { voidReport: { state: r.void_report as VoidReportState, at: r.void_report_at ?? null, reason: r.void_report_reason ?? null } }),
  };
}

function invoices(db: Db, dialect: Dialect): Repositories['invoices'] {
  return {
    async insert(invoices) {
      const rows = invoices.map((invoice) => ({ ...invoiceToRow(invoice) }));
      await hot.insertInvoiceRecords.execute(db, dialect, rows);
      await hot.insertInvoiceStates.execute(db, dialect, rows);
    },
    async get(merchantId, number) {
      const [row] = (await hot.invoice.execute(db, dialect, { merchantId, number })).rows;
      return row && rowToInvoice(row);
    },
    async list(merchantId, f: InvoiceFilter, limit) {
      // The page's positions first, then its rows: the sort over every match carries chain indexes
      // only (an index-only scan for a buyer over a date range), not every match's whole invoice.
      // From the sealed records, not the view: a buyer's invoices over a month come from one index
      // without a state lookup each (8,471 for the large buyer of bench:query); the state is looked
      // up only to filter on it.
      let q = db.selectFrom('invoice_records').select('chain_index').where('merchant_id', '=', merchantId);
      if (f.dateFrom) q = q.where('issue_date', '>=', f.dateFrom);
      if (f.dateTo) q = q.where('issue_date', '<=', f.dateTo);
      if (f.buyerName) q = q.where(contains('buyer_name', f.buyerName));
      if (f.buyerTaxId) q = q.where('buyer_tax_id', '=', f.buyerTaxId);
      if (f.minTotal !== undefined) q = q.where('total_with_tax', '>=', f.minTotal.toString());
      if (f.maxTotal !== undefined) q = q.where('total_with_tax', '<=', f.maxTotal.toString());
      if (f.status) {
        const status = f.status;
        q = q.where(({ exists, selectFrom }) =>
          exists(selectFrom('invoice_states as s').select('s.number').whereRef('s.merchant_id', '=', 'invoice_records.merchant_id').whereRef('s.number', '=', 'invoice_records.number').where('s.status', '=', status)));
      }
      if (f.kind) q = q.where('kind', '=', f.kind);
      if (f.beforeIndex !== undefined) q = q.where('chain_index', '<', f.beforeIndex);
      // A buyer over a date range: `chain_index + 0` keeps PostgreSQL from walking a big buyer's
      // invoices newest first through the buyer index until it reaches the range (300 ms with 1M
      // stored); both databases then read only the range from invoices_by_buyer_date and sort it.
      const position = f.buyerTaxId && (f.dateFrom || f.dateTo) ? sql<number>`chain_index + 0` : sql.ref('chain_index');
      const page = q.orderBy(position, 'desc').limit(limit);
      const rows = await db.selectFrom('invoices').selectAll().where('merchant_id', '=', merchantId).where('chain_index', 'in', page).orderBy('chain_index', 'desc').execute();
      return rows.map(rowToInvoice);
    },
    async count(merchantId) {
      const row = await db.selectFrom('invoice_records').select((eb) => eb.fn.countAll<number>().as('n')).where('merchant_id', '=', merchantId).executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async setStatus(merchantId, number, change) {
      await db
        .updateTable('invoice_states')
        .set({ status: change.status, status_changed_at: change.at, void_reason: change.reason })
        .where('merchant_id', '=', merchantId)
        .where('number', '=', number)
        .execute();
    },
    async chainPage(merchantId, afterIndex, limit) {
      const rows = await db.selectFrom('invoices').selectAll().where('merchant_id', '=', merchantId).where('chain_index', '>', afterIndex).orderBy('chain_index').limit(limit).execute();
      return rows.map(rowToInvoice);
    },
  };
}

/** Substring search that treats %, _ and \\ in the text as the characters they are. */
function contains(column: string, text: string) {
  const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<boolean>`${sql.ref(column)} like ${pattern} escape '\\'`;
}

function users(db: Db): Repositories['users'] {
  const toRecord = (r: Database['users']): UserRecord => ({
    id: r.id, merchantId: r.merchant_id, username: r.username, passwordHash: r.password_hash, role: r.role as Role,
    failedAttempts: Number(r.failed_attempts), lockedUntil: r.locked_until, createdAt: r.created_at,
  });
  return {
    async insert(u) {
      await db
        .insertInto('users')
        .values({ id: u.id, merchant_id: u.merchantId, username: u.username, password_hash: u.passwordHash, role: u.role, failed_attempts: u.failedAttempts, locked_until: u.lockedUntil, created_at: u.createdAt })
        .execute();
    },
    async get(id) {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRecord(row);
    },
    async findByUsername(username) {
      const row = await db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
      return row && toRecord(row);
    },
    async setLoginState(id, state) {
      await db.updateTable('users').set({ failed_attempts: state.failedAttempts, locked_until: state.lockedUntil }).where('id', '=', id).execute();
    },
    async setPasswordHash(id, passwordHash) {
      await db.updateTable('users').set({ password_hash: passwordHash, failed_attempts: 0, locked_until: null }).where('id', '=', id).execute();
    },
  };
}

function apiKeys(db: Db, dialect: Dialect): Repositories['apiKeys'] {
  const toRecord = (r: Database['api_keys']): ApiKeyRecord => ({
    id: r.id, merchantId: r.merchant_id, role: r.role as Role, label: r.label, secretHash: r.secret_hash, createdAt: r.created_at, revokedAt: r.revoked_at,
  });
  return {
    async insert(k) {
      await db
        .insertInto('api_keys')
        .values({ id: k.id, merchant_id: k.merchantId, role: k.role, label: k.label, secret_hash: k.secretHash, created_at: k.createdAt, revoked_at: k.revokedAt })
        .execute();
    },
    async get(id) {
      const [row] = (await hot.apiKey.execute(db, dialect, { id })).rows;
      return row && toRecord(row as unknown as Database['api_keys']);
    },
    async list(merchantId) {
      return (await db.selectFrom('api_keys').selectAll().where('merchant_id', '=', merchantId).orderBy('created_at').execute()).map(toRecord);
    },
    async revoke(merchantId, id, at) {
      const result = await db.updateTable('api_keys').set({ revoked_at: at }).where('merchant_id', '=', merchantId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}

function savedBuyers(db: Db): Repositories['savedBuyers'] {
  const toBuyer = (r: Database['saved_buyers']): SavedBuyer => ({
    id: r.id, name: r.name, taxId: r.tax_id, address: r.address, phone: r.phone, bank: r.bank, account: r.account, email: r.email, updatedAt: r.updated_at,
  });
  return {
    async upsert(merchantId, b) {
      const values = { name: b.name, tax_id: b.taxId, address: b.address, phone: b.phone, bank: b.bank, account: b.account, email: b.email, updated_at: b.updatedAt };
      const row = await db
        .insertInto('saved_buyers')
        .values({ id: b.id, merchant_id: merchantId, ...values })
        .onConflict((oc) => oc.columns(['merchant_id', 'name']).doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      return toBuyer(row);
    },
    async list(merchantId, search, limit) {
      let q = db.selectFrom('saved_buyers').selectAll().where('merchant_id', '=', merchantId);
      if (search) q = q.where((eb) => eb.or([contains('name', search), eb('tax_id', '=', search)]));
      return (await q.orderBy('updated_at', 'desc').orderBy('id').limit(limit).execute()).map(toBuyer);
    },
    async delete(merchantId, id) {
      const result = await db.deleteFrom('saved_buyers').where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}

function savedItems(db: Db): Repositories['savedItems'] {
  const toItem = (r: Database['saved_items']): SavedItem => ({
    id: r.id, name: r.name, taxCode: r.tax_code, spec: r.spec, unit: r.unit, unitPrice: r.unit_price, taxRate: r.tax_rate, updatedAt: r.updated_at,
  });
  return {
    async upsert(merchantId, i) {
      const values = { name: i.name, tax_code: i.taxCode, spec: i.spec, unit: i.unit, unit_price: i.unitPrice, tax_rate: i.taxRate, updated_at: i.updatedAt };
      const row = await db
        .insertInto('saved_items')
        .values({ id: i.id, merchant_id: merchantId, ...values })
        .onConflict((oc) => oc.columns(['merchant_id', 'name']).doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      return toItem(row);
    },
    async list(merchantId, search, limit) {
      let q = db.selectFrom('saved_items').selectAll().where('merchant_id', '=', merchantId);
      if (search) q = q.where(contains('name', search));
      return (await q.orderBy('updated_at', 'desc').orderBy('id').limit(limit).execute()).map(toItem);
    },
    async delete(merchantId, id) {
      const result = await db.deleteFrom('saved_items').where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}
