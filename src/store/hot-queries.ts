// The statements on the path of every issued invoice and every API call, prepared once per
// dialect (see prepared.ts). Everything else is built with Kysely as usual.
import { sql } from 'kysely';
import { arg, prepare } from './prepared.js';
import type { InvoiceTable } from './schema.js';

type Row = Record<string, unknown>;

function headsQuery(count: number, forUpdate: boolean) {
  return prepare<Row, { scope: string; hash: string; length: number | string }>((db) => {
    const query = db.selectFrom('chain_heads').select(['scope', 'hash', 'length']).where('scope', 'in', Array.from({ length: count }, (_, i) => arg<string>(`scope${i}`)));
    return forUpdate ? query.forUpdate() : query;
  });
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
  insertInvoice: prepare<InvoiceTable & Row, Row>((db) => {
    const columns: Array<keyof InvoiceTable> = [
      'merchant_id', 'number', 'kind', 'status', 'issued_at', 'issue_date', 'buyer_name', 'buyer_tax_id', 'total_amount', 'total_tax',
      'total_with_tax', 'content', 'digest', 'prev_hash', 'chain_hash', 'chain_index', 'void_reason', 'status_changed_at', 'signature', 'signing_key_id',
    ];
    return db.insertInto('invoices').values(Object.fromEntries(columns.map((c) => [c, arg(c)])) as never);
  }),
  findIdempotencyKey: prepare<{ merchantId: string; key: string }, { request_hash: string; invoice_number: string; created_at: string }>((db) =>
    db.selectFrom('idempotency_keys').select(['request_hash', 'invoice_number', 'created_at']).where('merchant_id', '=', arg('merchantId')).where('key', '=', arg('key')),
  ),
  insertIdempotencyKey: prepare<{ merchantId: string; key: string; requestHash: string; invoiceNumber: string; createdAt: string }, Row>((db) =>
    db.insertInto('idempotency_keys').values({
      merchant_id: arg('merchantId'), key: arg('key'), request_hash: arg('requestHash'), invoice_number: arg('invoiceNumber'), created_at: arg('createdAt'),
    }),
  ),
  usage: prepare<{ merchantId: string; period: string }, { invoice_count: number | string; pre_tax_fen: number | string }>((db) =>
    db.selectFrom('usage').select(['invoice_count', 'pre_tax_fen']).where('merchant_id', '=', arg('merchantId')).where('period', '=', arg('period')),
  ),
  addUsage: [1, 2, 3].map((count) =>
    prepare<Row, { period: string; invoice_count: number | string; pre_tax_fen: number | string; since: string | null }>((db) =>
      db
        .insertInto('usage')
        .values(Array.from({ length: count }, (_, i) => ({ merchant_id: arg('merchantId'), period: arg(`period${i}`), invoice_count: arg('count'), pre_tax_fen: arg('fen'), since: arg('at') })))
        .onConflict((oc) =>
          oc.columns(['merchant_id', 'period']).doUpdateSet((eb) => ({
            invoice_count: sql`usage.invoice_count + ${eb.ref('excluded.invoice_count')}`,
            pre_tax_fen: sql`usage.pre_tax_fen + ${eb.ref('excluded.pre_tax_fen')}`,
            since: sql`coalesce(usage.since, ${eb.ref('excluded.since')})`,
          })),
        )
        // The counters after the change: the issue checks the upload backlog's limits on them
        // (and rolls back when one is passed) without a statement of its own.
        .returning(['period', 'invoice_count', 'pre_tax_fen', 'since']),
    ),
  ),
  appendAudit: prepare<{ merchantId: string; at: string; actor: string; action: string; subject: string; detail: string; prevHash: string; hash: string }, Row>((db) =>
    db.insertInto('audit_log').values({
      merchant_id: arg('merchantId'), at: arg<string>('at'), actor: arg('actor'), action: arg('action'), subject: arg('subject'), detail: arg('detail'),
      prev_hash: arg('prevHash'), hash: arg('hash'),
    }),
  ),
  enqueueOutbox: prepare<{ merchantId: string; topic: string; subject: string; payload: string; at: string }, Row>((db) =>
    db.insertInto('outbox').values({
      merchant_id: arg('merchantId'), topic: arg('topic'), subject: arg('subject'), payload: arg('payload'), created_at: arg('at'), available_at: arg('at'), attempts: 0,
    }),
  ),
  merchant: prepare<{ id: string }, Row>((db) => db.selectFrom('merchants').selectAll().where('id', '=', arg('id'))),
  merchantForUpdate: prepare<{ id: string }, Row>((db) => db.selectFrom('merchants').selectAll().where('id', '=', arg('id')).forUpdate()),
  invoice: prepare<{ merchantId: string; number: string }, InvoiceTable>((db) =>
    db.selectFrom('invoices').selectAll().where('merchant_id', '=', arg('merchantId')).where('number', '=', arg('number')),
  ),
  apiKey: prepare<{ id: string }, Row>((db) => db.selectFrom('api_keys').selectAll().where('id', '=', arg('id'))),
};
