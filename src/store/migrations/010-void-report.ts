// Voids reach the tax service (作废上报). Each invoice's lifecycle row gains what the status alone
// cannot say once an invoice is voided: whether the tax service accepted its upload (`uploaded_at`,
// kept only for voided invoices: for the others the status says it), and how the void's report to
// the tax service stands (`void_report`: pending / reported / refused / not_needed, when, and a
// refusal's reason). The `invoices` view shows them.
//
// Invoices voided before this version: their 'invoice.void' outbox jobs were written but never
// worked, so they are pending now and the void worker delivers them; an upload job of theirs that
// completed without a problem recorded means the tax service accepted the upload.
import { sql, type Kysely } from 'kysely';

const COLUMNS = ['uploaded_at', 'void_report', 'void_report_at', 'void_report_reason'] as const;

const view = (extra: boolean) => sql`
  create view invoices as
  select r.merchant_id, r.number, r.kind, s.status, r.issued_at, r.issue_date, r.buyer_name, r.buyer_tax_id,
    r.total_amount, r.total_tax, r.total_with_tax, r.content, r.digest, r.prev_hash, r.chain_hash, r.chain_index,
    s.void_reason, s.status_changed_at, r.signature, r.signing_key_id${extra ? sql`,
    s.uploaded_at, s.void_report, s.void_report_at, s.void_report_reason` : sql``}
  from invoice_records r
  join invoice_states s on s.merchant_id = r.merchant_id and s.number = r.number`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop view invoices`.execute(db);
  for (const column of COLUMNS) await db.schema.alterTable('invoice_states').addColumn(column, 'text').execute();
  await sql`update invoice_states set void_report = 'pending' where status = 'voided'`.execute(db);
  // One pass over the done upload jobs of voided invoices (UPDATE … FROM: SQLite 3.33+, PostgreSQL).
  await sql`
    update invoice_states set uploaded_at = d.done_at
    from (
      select o.merchant_id, o.subject, max(o.done_at) as done_at
      from outbox o join invoice_states v on v.merchant_id = o.merchant_id and v.number = o.subject and v.status = 'voided'
      where o.topic = 'invoice.upload' and o.done_at is not null
      group by o.merchant_id, o.subject
    ) d
    where d.merchant_id = invoice_states.merchant_id and d.subject = invoice_states.number
      and not exists (select 1 from invoice_uploads u where u.merchant_id = invoice_states.merchant_id and u.number = invoice_states.number)`.execute(db);
  // The status page counts the voids still open (pending, refused) without walking every invoice.
  await db.schema
    .createIndex('invoice_states_void_open')
    .on('invoice_states')
    .columns(['merchant_id', 'void_report'])
    .where(sql.ref('void_report'), 'in', [sql.lit('pending'), sql.lit('refused')])
    .execute();
  await view(true).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view invoices`.execute(db);
  await db.schema.dropIndex('invoice_states_void_open').execute();
  for (const column of COLUMNS) await db.schema.alterTable('invoice_states').dropColumn(column).execute();
  await view(false).execute(db);
}
