// An invoice's sealed record and its lifecycle, in two tables. The record (parties, lines,
// amounts, digest, chain link, signature: about 1.6 KB) never changes once it is written; the
// state (issued → uploaded, rejected, voided) is a narrow row beside it. Marking a 1000-invoice
// upload done rewrote some 416 pages of whole invoice rows, 59 % of everything the upload's
// bookkeeping wrote; the narrow rows take a few dozen. `invoices` stays what every reader sees:
// a view joining the two, with the same columns as before.
import { PostgresAdapter, sql, type Kysely } from 'kysely';

const STATE_COLUMNS = ['status', 'status_changed_at', 'void_reason'] as const;

const VIEW = sql`
  create view invoices as
  select r.merchant_id, r.number, r.kind, s.status, r.issued_at, r.issue_date, r.buyer_name, r.buyer_tax_id,
    r.total_amount, r.total_tax, r.total_with_tax, r.content, r.digest, r.prev_hash, r.chain_hash, r.chain_index,
    s.void_reason, s.status_changed_at, r.signature, r.signing_key_id
  from invoice_records r
  join invoice_states s on s.merchant_id = r.merchant_id and s.number = r.number`;

export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema.alterTable('invoices').renameTo('invoice_records').execute();
  let states = db.schema
    .createTable('invoice_states')
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_changed_at', 'text')
    .addColumn('void_reason', 'text')
    .addPrimaryKeyConstraint('invoice_states_pk', ['merchant_id', 'number']);
  if (!postgres) states = states.modifyEnd(sql`without rowid`); // the key is the row: one b-tree
  await states.execute();
  await sql`insert into invoice_states (merchant_id, number, status, status_changed_at, void_reason)
    select merchant_id, number, status, status_changed_at, void_reason from invoice_records`.execute(db);
  for (const column of STATE_COLUMNS) await db.schema.alterTable('invoice_records').dropColumn(column).execute();
  await VIEW.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view invoices`.execute(db);
  await db.schema.alterTable('invoice_records').addColumn('status', 'text', (c) => c.notNull().defaultTo('issued')).execute();
  await db.schema.alterTable('invoice_records').addColumn('status_changed_at', 'text').execute();
  await db.schema.alterTable('invoice_records').addColumn('void_reason', 'text').execute();
  await sql`update invoice_records set status = s.status, status_changed_at = s.status_changed_at, void_reason = s.void_reason
    from invoice_states s where s.merchant_id = invoice_records.merchant_id and s.number = invoice_records.number`.execute(db);
  await db.schema.dropTable('invoice_states').execute();
  await db.schema.alterTable('invoice_records').renameTo('invoices').execute();
}
