// The statements on the path of every issued invoice and every API call, prepared once per
// dialect (see prepared.ts). Everything else is built with Kysely as usual.
import { sql, type Kysely } from 'kysely';
import { arg, prepare, prepareRows, rowArg } from './prepared.js';
import type { Database, InvoiceRecordTable, InvoiceStateTable, InvoiceTable } from './schema.js';

type Row = Record<string, unknown>;

/** A usage counter's fen as text, exact on SQLite too (see selectMerchants). */
export const preTaxFenText = sql<string>`cast(pre_tax_fen as text)`.as('pre_tax_fen');

/** A merchants row as `selectMerchants` reads it. */
export type MerchantRow = Omit<Database['merchants'], 'operator_credit_fen' | 'granted_credit_fen'> & { operator_credit_fen: string | null; granted_credit_fen: string | null };

/**
 * Merchants rows with their fen amounts as text: SQLite hands an integer to JavaScript as a double,
 * exact only up to 2^53 fen, and a credit line may be set far beyond (test/integration/issue-context.test.ts).
 */
export function selectMerchants(db: Kysely<Database>) {
  return db.selectFrom('merchants')
    .select(['id', 'name', 'tax_id', 'address', 'phone', 'bank', 'account', 'region_code', 'daily_invoice_limit', 'created_at', 'contingency_terms', 'terms_fetched_at', 'offline_since'])
    .select([sql<string | null>`cast(operator_credit_fen as text)`.as('operator_credit_fen'), sql<string | null>`cast(granted_credit_fen as text)`.as('granted_credit_fen')]);
}

function headsQuery(count: number, forUpdate: boolean) {
  return prepare<Row, { scope: string; hash: string; length: number | string }>((db) => {
    const query = db.selectFrom('chain_heads').select(['scope', 'hash', 'length']).where('scope', 'in', Array.from({ length: count }, (_, i) => arg<string>(`scope${i}`)));
    return forUpdate ? query.forUpdate() : query;
  });
}

/** Rows of `table`, each given as an object with (at least) these columns. */
function insertRows<T extends object>(table: 'invoice_records' | 'invoice_states', columns: Array<keyof T & string>) {
  return prepareRows<T & Row, Row>((db, rows) =>
    db.insertInto(table).values(Array.from({ length: rows }, (_, i) => Object.fromEntries(columns.map((c) => [c, rowArg(c, i)]))) as never),
  );
}

export const hot = {
  nextSequence: prepare<{ merchantId: string; year: number }, { last_sequence: number | string }>((db) =>
    db.updateTable('invoice_series').set({ last_sequence: sql`last_sequence + 1` }).where('merchant_id', '=', arg('merchantId')).where('year', '=', arg('year')).returning('last_sequence'),
  ),
  chainHeads: [1, 2].map((count) => ({
    plain: headsQuery(count, false),
    forUpdate: headsQuery(count, true),
    advance: prepare<Row, Row>((db) =>
      db
        .insertInto('chain_heads')
        .values(Array.from({ length: count }, (_, i) => ({ scope: arg(`scope${i}`), hash: arg(`hash${i}`), length: arg(`length${i}`) })))
        .onConflict((oc) => oc.column('scope').doUpdateSet((eb) => ({ hash: eb.ref('excluded.hash'), length: eb.ref('excluded.length') }))),
    ),
  })),
  insertInvoiceRecords: insertRows<InvoiceRecordTable>('invoice_records', [
    'merchant_id', 'number', 'kind', 'issued_at', 'issue_date', 'buyer_name', 'buyer_tax_id', 'total_amount', 'total_tax',
    'total_with_tax', 'content', 'digest', 'prev_hash', 'chain_hash', 'chain_index', 'signature', 'signing_key_id',
  ]),
  insertInvoiceStates: insertRows<InvoiceStateTable>('invoice_states', ['merchant_id', 'number', 'status', 'status_changed_at', 'void_reason']),
  findIdempotencyKeys: prepareRows<{ key: string }, { key: string; request_hash: string; invoice_number: string; created_at: string }>((db, rows) =>
    db
      .selectFrom('idempotency_keys')
      .select(['key', 'request_hash', 'invoice_number', 'created_at'])
      .where('merchant_id', '=', arg('merchantId'))
      .where('key', 'in', Array.from({ length: rows }, (_, i) => rowArg<string>('key', i))),
  ),
  insertIdempotencyKeys: prepareRows<{ merchantId: string; key: string; requestHash: string; invoiceNumber: string; createdAt: string }, Row>((db, rows) =>
    db.insertInto('idempotency_keys').values(
      Array.from({ length: rows }, (_, i) => ({
        merchant_id: rowArg('merchantId', i), key: rowArg('key', i), request_hash: rowArg('requestHash', i), invoice_number: rowArg('invoiceNumber', i), created_at: rowArg('createdAt', i),
      })),
    ),
  ),
  usage: prepare<{ merchantId: string; period: string }, { invoice_count: number | string; pre_tax_fen: number | string; since: string | null }>((db) =>
    db.selectFrom('usage').select(['invoice_count', preTaxFenText, 'since']).where('merchant_id', '=', arg('merchantId')).where('period', '=', arg('period')),
  ),
  addUsage: prepareRows<{ merchantId: string; period: string; count: number; fen: string; at: string | null }, Row>((db, rows) =>
    db
      .insertInto('usage')
      .values(Array.from({ length: rows }, (_, i) => ({ merchant_id: rowArg('merchantId', i), period: rowArg('period', i), invoice_count: rowArg('count', i), pre_tax_fen: rowArg('fen', i), since: rowArg('at', i) })))
      .onConflict((oc) =>
        oc.columns(['merchant_id', 'period']).doUpdateSet((eb) => ({
          invoice_count: sql`usage.invoice_count + ${eb.ref('excluded.invoice_count')}`,
          pre_tax_fen: sql`usage.pre_tax_fen + ${eb.ref('excluded.pre_tax_fen')}`,
          since: sql`coalesce(usage.since, ${eb.ref('excluded.since')})`,
        })),
      ),
  ),
  appendAudit: prepareRows<{ merchantId: string; at: string; actor: string; action: string; subject: string; detail: string; prevHash: string; hash: string }, Row>((db, rows) =>
    db.insertInto('audit_log').values(
      Array.from({ length: rows }, (_, i) => ({
        merchant_id: rowArg('merchantId', i), at: rowArg<string>('at', i), actor: rowArg('actor', i), action: rowArg('action', i), subject: rowArg('subject', i), detail: rowArg('detail', i),
        prev_hash: rowArg('prevHash', i), hash: rowArg('hash', i),
      })),
    ),
  ),
  enqueueOutbox: prepare<{ merchantId: string; topic: string; subject: string; payload: string; at: string }, Row>((db) =>
    db.insertInto('outbox').values({
      merchant_id: arg('merchantId'), topic: arg('topic'), subject: arg('subject'), payload: arg('payload'), created_at: arg('at'), available_at: arg('at'), attempts: 0,
    }),
  ),
  merchant: prepare<{ id: string }, MerchantRow>((db) => selectMerchants(db).where('id', '=', arg('id'))),
  merchantForUpdate: prepare<{ id: string }, MerchantRow>((db) => selectMerchants(db).where('id', '=', arg('id')).forUpdate()),
  invoice: prepare<{ merchantId: string; number: string }, InvoiceTable>((db) =>
    db.selectFrom('invoices').selectAll().where('merchant_id', '=', arg('merchantId')).where('number', '=', arg('number')),
  ),
  apiKey: prepare<{ id: string }, Row>((db) => db.selectFrom('api_keys').selectAll().where('id', '=', arg('id'))),
};
