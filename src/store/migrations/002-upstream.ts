// Numbers from the tax service and the upload backlog (contingency, 离线开票). Kysely's schema
// builder only, so the same migration runs on SQLite and PostgreSQL.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // 号段: the tax service grants each (seller, year) series in blocks; the issue path takes the next
  // sequence of the oldest open block, inside its transaction, so numbers are gap-free within a
  // block. Used-up blocks stay, as the record of which numbers came from where.
  await db.schema
    .createTable('number_blocks')
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('block_id', 'text', (c) => c.notNull())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('next_seq', 'bigint', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull()) // 'upstream' | 'granted' (entered by an operator)
    .addColumn('granted_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('number_blocks_pk', ['merchant_id', 'block_id'])
    .execute();
  // Only open blocks are indexed, so finding the current one never walks a year of used-up ones.
  await db.schema
    .createIndex('number_blocks_open')
    .on('number_blocks')
    .columns(['merchant_id', 'year', 'first_seq'])
    .where(sql.ref('next_seq'), '<=', sql.ref('last_seq'))
    .execute();

  // What the tax service said about an invoice when it was not a plain acceptance: a rejection
  // (reason, what to do) or a conflict (quarantine: the tax service holds another digest for the
  // same number; both versions are kept, ours in `invoices`, theirs here). Accepted uploads need no
  // row: the invoice's status says it.
  await db.schema
    .createTable('invoice_uploads')
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // 'rejected' | 'quarantined'
    .addColumn('reason_code', 'text')
    .addColumn('reason', 'text')
    .addColumn('local_digest', 'text', (c) => c.notNull())
    .addColumn('held_digest', 'text')
    .addColumn('upstream_record', 'text') // the tax service's status answer, as it was
    .addColumn('at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('invoice_uploads_pk', ['merchant_id', 'number'])
    .execute();

  // Pending uploads of a merchant in issue order: the oldest un-uploaded invoice (offline hours)
  // is found without walking the done rows. Partial, so it holds the backlog only.
  await db.schema
    .createIndex('outbox_upload_pending')
    .on('outbox')
    .columns(['merchant_id', 'id'])
    .where(sql.ref('topic'), '=', sql.lit('invoice.upload'))
    .where(sql.ref('done_at'), 'is', null)
    .execute();

  // Claiming walks the due jobs of a topic in id order: without this index a claim sorts the whole
  // backlog (100,000 rows after a long outage) to find its first thousand.
  await db.schema
    .createIndex('outbox_due')
    .on('outbox')
    .columns(['topic', 'id'])
    .where(sql.ref('done_at'), 'is', null)
    .execute();

  // Backlog counters per (merchant, kind) live in `usage` as periods 'Bnormal'/'Bspecial', so the
  // issue path updates them in the statement that already counts day and month. `since` is the
  // oldest moment still counted: for a backlog row, the issue time of the oldest un-uploaded invoice.
  await db.schema.alterTable('usage').addColumn('since', 'text').execute();

  // The tax service's terms, cached on the merchant row that every issue already reads:
  // contingency limits per kind (JSON) and when they were last fetched.
  await db.schema.alterTable('merchants').addColumn('contingency_terms', 'text').execute();
  await db.schema.alterTable('merchants').addColumn('terms_fetched_at', 'text').execute();
  // Set while the merchant is in contingency (since when): the offline limits apply only then, and
  // the issue reads it with the merchant row it locks anyway.
  await db.schema.alterTable('merchants').addColumn('offline_since', 'text').execute();

  // A database from before this migration: the numbers already issued from the local series become a
  // used-up block (so no block can overlap them), and the invoices still waiting for upload start the
  // backlog counters.
  await sql`insert into number_blocks (merchant_id, block_id, year, first_seq, last_seq, next_seq, source, granted_at)
    select merchant_id, 'local-series-' || cast(year as text), year, 1, last_sequence, last_sequence + 1, 'granted', '2000-01-01T00:00:00.000+08:00'
    from invoice_series where last_sequence > 0`.execute(db);
  await sql`insert into usage (merchant_id, period, invoice_count, pre_tax_fen, since)
    select i.merchant_id, 'B' || i.kind, count(*), sum(i.total_amount), min(i.issued_at)
    from outbox o join invoices i on i.merchant_id = o.merchant_id and i.number = o.subject
    where o.topic = 'invoice.upload' and o.done_at is null
    group by i.merchant_id, i.kind`.execute(db);

  // Whether the merchant reaches the tax service right now (online / contingency), since when, and
  // the last thing that went wrong — shared by every instance, written only when it changes.
  await db.schema
    .createTable('upstream_state')
    .addColumn('merchant_id', 'text', (c) => c.primaryKey())
    .addColumn('mode', 'text', (c) => c.notNull()) // 'online' | 'contingency'
    .addColumn('since', 'text', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('last_success_at', 'text')
    .addColumn('warned_at', 'text') // when the 80 % warning of this contingency episode was raised
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('upstream_state').execute();
  await db.schema.alterTable('merchants').dropColumn('offline_since').execute();
  await db.schema.alterTable('merchants').dropColumn('terms_fetched_at').execute();
  await db.schema.alterTable('merchants').dropColumn('contingency_terms').execute();
  await db.schema.alterTable('usage').dropColumn('since').execute();
  await db.schema.dropIndex('outbox_due').execute();
  await db.schema.dropIndex('outbox_upload_pending').execute();
  await db.schema.dropTable('invoice_uploads').execute();
  await db.schema.dropTable('number_blocks').execute();
}
