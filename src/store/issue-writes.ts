// What an issue batch writes once it has decided. SQLite runs the tables' multi-row statements one
// after another (in-process, no round trips). PostgreSQL gets ONE statement: every table's rows as
// arrays, unnested in data-modifying CTEs. Under the merchant's lock each statement is a round trip,
// and while the instance holding the lock waits for its answers the others wait for the lock.
import { CompiledQuery, type Kysely } from 'kysely';
import type { IssueWrites, Repositories } from '../app/ports.js';
import type { Database } from './schema.js';
import { invoiceToRow } from './repositories.js';
import { arg, prepare, registerStatement } from './prepared.js';

type Db = Kysely<Database>;
type Dialect = 'sqlite' | 'postgres';
type Sequential = Pick<Repositories, 'invoices' | 'usage' | 'idempotency' | 'uploads' | 'audit' | 'chain'>;

const advanceBlock = prepare<{ merchantId: string; blockId: string; next: number }, never>((db) =>
  db.updateTable('number_blocks').set({ next_seq: arg('next') }).where('merchant_id', '=', arg('merchantId')).where('block_id', '=', arg('blockId')),
);

export function issueWrites(db: Db, dialect: Dialect, repositories: Sequential): Repositories['issues'] {
  return {
    async store(w) {
      if (dialect === 'postgres') {
        await db.executeQuery(CompiledQuery.raw(STORE_ISSUED, parameters(w)));
        return;
      }
      await repositories.invoices.insert(w.invoices);
      for (const block of w.blocks) await advanceBlock.execute(db, dialect, { merchantId: w.merchantId, blockId: block.blockId, next: block.next });
      await repositories.usage.add(w.merchantId, w.usage, w.at);
      await repositories.idempotency.insert(w.keys);
      await repositories.uploads.enqueue(w.uploads);
      await repositories.audit.append(w.audit);
      await repositories.chain.advance(w.heads);
    },
  };
}

// Rows are numbered (WITH ORDINALITY) where their order is their meaning: outbox ids are the upload
// order and audit ids the order the audit chain is verified in. Upload records find their job by
// the invoice number (unique within a batch).
const STORE_ISSUED = `
with
invoice_rows as (
  insert into invoice_records (merchant_id, number, kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax,
    total_with_tax, content, digest, prev_hash, chain_hash, chain_index, signature, signing_key_id)
  select $1, i.number, i.kind, i.issued_at, i.issue_date, i.buyer_name, i.buyer_tax_id, i.total_amount, i.total_tax,
    i.total_with_tax, i.content, i.digest, i.prev_hash, i.chain_hash, i.chain_index, i.signature, i.signing_key_id
  from unnest($2::text[], $3::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
    $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[], $19::text[], $20::text[])
    as i(number, kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax,
      total_with_tax, content, digest, prev_hash, chain_hash, chain_index, signature, signing_key_id)
),
state_rows as (
  insert into invoice_states (merchant_id, number, status, void_reason, status_changed_at)
  select $1, * from unnest($2::text[], $4::text[], $17::text[], $18::text[])
),
block_rows as (
  update number_blocks set next_seq = b.next_seq
  from unnest($21::text[], $22::bigint[]) as b(block_id, next_seq)
  where number_blocks.merchant_id = $1 and number_blocks.block_id = b.block_id
),
usage_rows as (
  insert into usage (merchant_id, period, invoice_count, pre_tax_fen, since)
  select $1, u.period, u.invoice_count, u.pre_tax_fen, $26 from unnest($23::text[], $24::integer[], $25::bigint[]) as u(period, invoice_count, pre_tax_fen)
  on conflict (merchant_id, period) do update set
    invoice_count = usage.invoice_count + excluded.invoice_count,
    pre_tax_fen = usage.pre_tax_fen + excluded.pre_tax_fen,
    since = coalesce(usage.since, excluded.since)
),
key_rows as (
  insert into idempotency_keys (merchant_id, key, request_hash, invoice_number, created_at)
  select $1, * from unnest($27::text[], $28::text[], $29::text[], $30::text[])
),
job_rows as (
  insert into outbox (merchant_id, topic, subject, payload, created_at, available_at, attempts)
  select $1, 'invoice.upload', j.subject, j.payload, j.at, j.at, 0
  from unnest($31::text[], $32::text[], $34::text[]) with ordinality as j(subject, payload, at, position) order by j.position
  returning id, subject
),
record_rows as (
  insert into upload_records (job_id, merchant_id, record)
  select job_rows.id, $1, r.record from job_rows join unnest($31::text[], $33::text[]) as r(subject, record) on r.subject = job_rows.subject
),
audit_rows as (
  insert into audit_log (merchant_id, at, actor, action, subject, detail, prev_hash, hash)
  select $1, a.at, a.actor, a.action, a.subject, a.detail, a.prev_hash, a.hash
  from unnest($35::text[], $36::text[], $37::text[], $38::text[], $39::text[], $40::text[], $41::text[])
    with ordinality as a(at, actor, action, subject, detail, prev_hash, hash, position) order by a.position
)
insert into chain_heads (scope, hash, length)
select * from unnest($42::text[], $43::text[], $44::bigint[])
on conflict (scope) do update set hash = excluded.hash, length = excluded.length`;
registerStatement(STORE_ISSUED);

function parameters(w: IssueWrites): unknown[] {
  const rows = w.invoices.map(invoiceToRow);
  const column = <K extends keyof (typeof rows)[number]>(name: K) => rows.map((r) => r[name]);
  return [
    w.merchantId,
    column('number'), column('kind'), column('status'), column('issued_at'), column('issue_date'), column('buyer_name'), column('buyer_tax_id'),
    column('total_amount'), column('total_tax'), column('total_with_tax'), column('content'), column('digest'), column('prev_hash'),
    column('chain_hash'), column('chain_index'), column('void_reason'), column('status_changed_at'), column('signature'), column('signing_key_id'),
    w.blocks.map((b) => b.blockId), w.blocks.map((b) => b.next),
    w.usage.map((u) => u.period), w.usage.map((u) => u.invoiceCount), w.usage.map((u) => u.preTaxFen.toString()), w.at,
    w.keys.map((k) => k.key), w.keys.map((k) => k.requestHash), w.keys.map((k) => k.invoiceNumber), w.keys.map((k) => k.createdAt),
    w.uploads.map((j) => j.number), w.uploads.map((j) => j.payload), w.uploads.map((j) => j.record), w.uploads.map((j) => j.at),
    w.audit.map((a) => a.at), w.audit.map((a) => a.actor), w.audit.map((a) => a.action), w.audit.map((a) => a.subject), w.audit.map((a) => a.detail),
    w.audit.map((a) => a.prevHash), w.audit.map((a) => a.hash),
    w.heads.map((h) => h.scope), w.heads.map((h) => h.hash), w.heads.map((h) => h.index),
  ];
}
