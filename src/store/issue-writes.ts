// What an issue batch reads under its merchant's lock, and what it writes once it has decided.
// SQLite runs the repositories' statements one after another (in-process, no round trips).
// PostgreSQL gets ONE statement for each: the reads as rows of one shape, the writes as every
// table's rows in a JSON array, unpacked in data-modifying CTEs; the write goes out with the commit
// (pg-send-with-next.ts). Under the merchant's lock every answer the instance must handle waits for
// a turn of its event loop (other requests' parsing and answers go first) while the other
// instances wait for the lock.
import { CompiledQuery, type Kysely } from 'kysely';
import type { IssueContext, IssueContextQuery, IssueWrites, Repositories, UsageCounters } from '../app/ports.js';
import type { Database } from './schema.js';
import { chainHead, invoiceToRow, merchantRecord, usageCounters } from './repositories.js';
import { arg, prepare, registerStatement } from './prepared.js';
import { sendWithNext } from './pg-send-with-next.js';

type Db = Kysely<Database>;
type Dialect = 'sqlite' | 'postgres';
type Sequential = Pick<Repositories, 'merchants' | 'invoices' | 'usage' | 'idempotency' | 'uploads' | 'audit' | 'chain' | 'numberBlocks'>;

const advanceBlock = prepare<{ merchantId: string; blockId: string; next: number }, never>((db) =>
  db.updateTable('number_blocks').set({ next_seq: arg('next') }).where('merchant_id', '=', arg('merchantId')).where('block_id', '=', arg('blockId')),
);

export function issueWrites(db: Db, dialect: Dialect, repositories: Sequential): Repositories['issues'] {
  return {
    async context(q) {
      if (dialect === 'postgres') return contextOf(q, (await db.executeQuery<ContextRow>(CompiledQuery.raw(READ_CONTEXT, [q.merchantId, q.periods, q.year, q.scopes]))).rows);
      const usage = new Map<string, UsageCounters>();
      for (const period of q.periods) usage.set(period, await repositories.usage.get(q.merchantId, period));
      return {
        merchant: await repositories.merchants.lock(q.merchantId), // SQLite: its write lock is held already
        usage,
        blocks: await repositories.numberBlocks.open(q.merchantId, q.year),
        heads: await repositories.chain.heads(q.scopes),
      };
    },
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

// The context as rows of one shape, told apart by `kind`; blocks in their order. The chain heads are
// locked as chain.heads locks them. It goes out together with the merchant's lock statement
// (`merchants.hold`), and as a statement of its own it takes its snapshot once that lock is granted
// (read committed): it holds every batch committed before, and the merchant row as it is now. The
// merchant row travels as JSON with its fen amounts as text (as `selectMerchants` reads them), since
// JSON numbers are doubles.
export const READ_CONTEXT = `
with heads as (select scope, hash, length from chain_heads where scope = any($4::text[]) for update)
select 'merchant' as kind, id as name,
  (to_jsonb(merchants) || jsonb_build_object('operator_credit_fen', operator_credit_fen::text, 'granted_credit_fen', granted_credit_fen::text))::text as a,
  null as b, null as c, 0::bigint as position
from merchants where id = $1
union all
select 'usage', period, invoice_count::text, pre_tax_fen::text, since, 0 from usage where merchant_id = $1 and period = any($2::text[])
union all
select 'block', block_id, next_seq::text, last_seq::text, null, first_seq from number_blocks
where merchant_id = $1 and year = $3 and next_seq <= last_seq
union all
select 'head', scope, hash, length::text, null, 0 from heads
order by kind, position`;
registerStatement(READ_CONTEXT);

interface ContextRow {
  kind: 'merchant' | 'usage' | 'block' | 'head';
  name: string;
  a: string;
  b: string;
  c: string | null;
}

function contextOf(q: IssueContextQuery, rows: readonly ContextRow[]): IssueContext {
  const context: IssueContext = { merchant: undefined, usage: new Map(q.periods.map((period) => [period, usageCounters(period)])), blocks: [], heads: [] };
  const heads = new Map<string, { hash: string; length: string }>();
  for (const row of rows) {
    if (row.kind === 'merchant') context.merchant = merchantRecord(JSON.parse(row.a));
    else if (row.kind === 'usage') context.usage.set(row.name, usageCounters(row.name, { invoice_count: row.a, pre_tax_fen: row.b, since: row.c }));
    else if (row.kind === 'block') context.blocks.push({ blockId: row.name, next: Number(row.a), last: Number(row.b) });
    else heads.set(row.name, { hash: row.a, length: row.b });
  }
  context.heads = q.scopes.map((scope) => chainHead(scope, heads.get(scope)));
  return context;
}

// Each table's rows travel as one JSON array of objects (JSON.stringify, native) and are unpacked
// with json_to_recordset: as arrays of text, node-postgres escaped every element in JavaScript (two
// regular expressions over each invoice's content, each upload record and each audit detail), 13 %
// of an instance's CPU in bench:issue, all of it while the batch held the merchant's lock. Rows are
// numbered (WITH ORDINALITY) where their order is their meaning: outbox ids are the upload order and
// audit ids the order the audit chain is verified in. Upload records find their job by the invoice
// number (unique within a batch).
const STORE_ISSUED = `
with
invoices as materialized (
  select * from json_to_recordset($2::json) as i(number text, kind text, status text, issued_at text, issue_date text, buyer_name text,
    buyer_tax_id text, total_amount bigint, total_tax bigint, total_with_tax bigint, content text, digest text, prev_hash text,
    chain_hash text, chain_index bigint, void_reason text, status_changed_at text, signature text, signing_key_id text)
),
invoice_rows as (
  insert into invoice_records (merchant_id, number, kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax,
    total_with_tax, content, digest, prev_hash, chain_hash, chain_index, signature, signing_key_id)
  select $1, number, kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax,
    total_with_tax, content, digest, prev_hash, chain_hash, chain_index, signature, signing_key_id
  from invoices
),
state_rows as (
  insert into invoice_states (merchant_id, number, status, void_reason, status_changed_at)
  select $1, number, status, void_reason, status_changed_at from invoices
),
block_rows as (
  update number_blocks set next_seq = b.next_seq
  from json_to_recordset($3::json) as b(block_id text, next_seq bigint)
  where number_blocks.merchant_id = $1 and number_blocks.block_id = b.block_id
),
usage_rows as (
  insert into usage (merchant_id, period, invoice_count, pre_tax_fen, since)
  select $1, u.period, u.invoice_count, u.pre_tax_fen, $4 from json_to_recordset($5::json) as u(period text, invoice_count integer, pre_tax_fen bigint)
  on conflict (merchant_id, period) do update set
    invoice_count = usage.invoice_count + excluded.invoice_count,
    pre_tax_fen = usage.pre_tax_fen + excluded.pre_tax_fen,
    since = coalesce(usage.since, excluded.since)
),
key_rows as (
  insert into idempotency_keys (merchant_id, key, request_hash, invoice_number, created_at)
  select $1, k.key, k.request_hash, k.invoice_number, k.created_at
  from json_to_recordset($6::json) as k(key text, request_hash text, invoice_number text, created_at text)
),
uploads as materialized (
  select * from rows from (json_to_recordset($7::json) as (subject text, payload text, at text, record text, kind text, pre_tax_fen bigint, digest text))
    with ordinality as j(subject, payload, at, record, kind, pre_tax_fen, digest, position)
),
job_rows as (
  insert into outbox (merchant_id, topic, subject, payload, created_at, available_at, attempts)
  select $1, 'invoice.upload', subject, payload, at, at, 0 from uploads order by position
  returning id, subject
),
record_rows as (
  insert into upload_records (job_id, merchant_id, record, kind, pre_tax_fen, digest)
  select job_rows.id, $1, u.record, u.kind, u.pre_tax_fen, u.digest from job_rows join uploads u on u.subject = job_rows.subject
),
audit_rows as (
  insert into audit_log (merchant_id, at, actor, action, subject, detail, prev_hash, hash)
  select $1, a.at, a.actor, a.action, a.subject, a.detail, a.prev_hash, a.hash
  from rows from (json_to_recordset($8::json) as (at text, actor text, action text, subject text, detail text, prev_hash text, hash text))
    with ordinality as a(at, actor, action, subject, detail, prev_hash, hash, position) order by a.position
)
insert into chain_heads (scope, hash, length)
select h.scope, h.hash, h.length from json_to_recordset($9::json) as h(scope text, hash text, length bigint)
on conflict (scope) do update set hash = excluded.hash, length = excluded.length`;
registerStatement(STORE_ISSUED);
sendWithNext(STORE_ISSUED); // the batch's last statement: it goes out with the commit

function parameters(w: IssueWrites): unknown[] {
  return [
    w.merchantId,
    JSON.stringify(w.invoices.map(invoiceToRow)),
    JSON.stringify(w.blocks.map((b) => ({ block_id: b.blockId, next_seq: b.next }))),
    w.at,
    JSON.stringify(w.usage.map((u) => ({ period: u.period, invoice_count: u.invoiceCount, pre_tax_fen: u.preTaxFen.toString() }))),
    JSON.stringify(w.keys.map((k) => ({ key: k.key, request_hash: k.requestHash, invoice_number: k.invoiceNumber, created_at: k.createdAt }))),
    JSON.stringify(w.uploads.map((j) => ({
      subject: j.number, payload: j.payload, at: j.at, record: j.record.json, kind: j.record.kind, pre_tax_fen: j.record.preTaxFen.toString(), digest: j.record.digest,
    }))),
    JSON.stringify(w.audit.map((a) => ({ at: a.at, actor: a.actor, action: a.action, subject: a.subject, detail: a.detail, prev_hash: a.prevHash, hash: a.hash }))),
    JSON.stringify(w.heads.map((h) => ({ scope: h.scope, hash: h.hash, length: h.index }))),
  ];
}
