// What an issue batch reads under its merchant's lock, and what it writes once it has decided.
// SQLite runs the repositories' statements one after another (in-process, no round trips).
// PostgreSQL gets ONE statement for each: the reads as rows of one shape, the writes as every
// table's rows in arrays, unnested in data-modifying CTEs; the write goes out with the commit
// (pg-send-with-next.ts). Under the merchant's lock every answer the instance must handle waits for
// a turn of its event loop (other requests' parsing and answers go first) while the other
// instances wait for the lock.
import { CompiledQuery, type Kysely } from 'kysely';
import type { IssueContext, IssueContextQuery, IssueWrites, Repositories, UsageCounters } from '../app/ports.js';
import type { Database } from './schema.js';
import { chainHead, invoiceToRow, usageCounters } from './repositories.js';
import { arg, prepare, registerStatement } from './prepared.js';
import { sendWithNext } from './pg-send-with-next.js';

type Db = Kysely<Database>;
type Dialect = 'sqlite' | 'postgres';
type Sequential = Pick<Repositories, 'invoices' | 'usage' | 'idempotency' | 'uploads' | 'audit' | 'chain' | 'numberBlocks'>;

const advanceBlock = prepare<{ merchantId: string; blockId: string; next: number }, never>((db) =>
  db.updateTable('number_blocks').set({ next_seq: arg('next') }).where('merchant_id', '=', arg('merchantId')).where('block_id', '=', arg('blockId')),
);

export function issueWrites(db: Db, dialect: Dialect, repositories: Sequential): Repositories['issues'] {
  return {
    async context(q) {
      if (dialect === 'postgres') return contextOf(q, (await db.executeQuery<ContextRow>(CompiledQuery.raw(READ_CONTEXT, [q.merchantId, q.keys, q.periods, q.year, q.scopes]))).rows);
      const usage = new Map<string, UsageCounters>();
      for (const period of q.periods) usage.set(period, await repositories.usage.get(q.merchantId, period));
      return {
        earlier: q.keys.length > 0 ? await repositories.idempotency.find(q.merchantId, q.keys) : new Map(),
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
// locked as chain.heads locks them. It runs after the merchant's lock statement, so (read committed)
// its snapshot already holds every batch committed before the lock was granted.
// Each idempotency key is looked up on its own (LATERAL … LIMIT 1, which PostgreSQL cannot turn into
// a join): written as `merchant_id = $1 and key = any($2)`, a planner that guessed the merchant had
// few keys (no statistics yet, or a merchant outside the sampled common values) read every key the
// merchant holds and filtered them, under the merchant's lock: 2 ms at 9,000 keys, growing with them.
export const READ_CONTEXT = `
with heads as (select scope, hash, length from chain_heads where scope = any($5::text[]) for update)
select 'key' as kind, k.key as name, i.request_hash as a, i.invoice_number as b, i.created_at as c, 0::bigint as position
from unnest($2::text[]) as k(key)
cross join lateral (select request_hash, invoice_number, created_at from idempotency_keys where merchant_id = $1 and key = k.key limit 1) as i
union all
select 'usage', period, invoice_count::text, pre_tax_fen::text, since, 0 from usage where merchant_id = $1 and period = any($3::text[])
union all
select 'block', block_id, next_seq::text, last_seq::text, null, first_seq from number_blocks
where merchant_id = $1 and year = $4 and next_seq <= last_seq
union all
select 'head', scope, hash, length::text, null, 0 from heads
order by kind, position`;
registerStatement(READ_CONTEXT);

interface ContextRow {
  kind: 'key' | 'usage' | 'block' | 'head';
  name: string;
  a: string;
  b: string;
  c: string | null;
}

function contextOf(q: IssueContextQuery, rows: readonly ContextRow[]): IssueContext {
  const context: IssueContext = { earlier: new Map(), usage: new Map(q.periods.map((period) => [period, usageCounters(period)])), blocks: [], heads: [] };
  const heads = new Map<string, { hash: string; length: string }>();
  for (const row of rows) {
    if (row.kind === 'key') context.earlier.set(row.name, { merchantId: q.merchantId, key: row.name, requestHash: row.a, invoiceNumber: row.b, createdAt: row.c! });
    else if (row.kind === 'usage') context.usage.set(row.name, usageCounters(row.name, { invoice_count: row.a, pre_tax_fen: row.b, since: row.c }));
    else if (row.kind === 'block') context.blocks.push({ blockId: row.name, next: Number(row.a), last: Number(row.b) });
    else heads.set(row.name, { hash: row.a, length: row.b });
  }
  context.heads = q.scopes.map((scope) => chainHead(scope, heads.get(scope)));
  return context;
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
  insert into upload_records (job_id, merchant_id, record, kind, pre_tax_fen, digest)
  select job_rows.id, $1, r.record, r.kind, r.pre_tax_fen, r.digest
  from job_rows join unnest($31::text[], $33::text[], $45::text[], $46::bigint[], $47::text[]) as r(subject, record, kind, pre_tax_fen, digest) on r.subject = job_rows.subject
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
sendWithNext(STORE_ISSUED); // the batch's last statement: it goes out with the commit

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
    w.uploads.map((j) => j.number), w.uploads.map((j) => j.payload), w.uploads.map((j) => j.record.json), w.uploads.map((j) => j.at),
    w.audit.map((a) => a.at), w.audit.map((a) => a.actor), w.audit.map((a) => a.action), w.audit.map((a) => a.subject), w.audit.map((a) => a.detail),
    w.audit.map((a) => a.prevHash), w.audit.map((a) => a.hash),
    w.heads.map((h) => h.scope), w.heads.map((h) => h.hash), w.heads.map((h) => h.index),
    w.uploads.map((j) => j.record.kind), w.uploads.map((j) => j.record.preTaxFen.toString()), w.uploads.map((j) => j.record.digest),
  ];
}
