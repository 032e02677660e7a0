// The record an upload job sends, kept in a table of its own instead of the job's payload. A job
// row is rewritten twice on its way (claimed, completed), and SQLite writes whole pages: with the
// record inline (about 1 KB) a drain of 1000 invoices rewrote some 670 outbox pages of which only
// a few bytes changed. Written once when the invoice is issued; deleted by housekeeping once its
// job is done (until 2026-12-03, by the transaction that completed the job).
// Jobs enqueued before (their record in the payload, or none) are built from the stored invoice.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('upload_records')
    .addColumn('job_id', 'integer', (c) => c.primaryKey().references('outbox.id'))
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('upload_records').execute();
}
