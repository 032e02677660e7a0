// The first outbox index, (done_at, topic, available_at) over every row, has been unused since
// 002 added the partial indexes of pending jobs, which every claim, due check and lease query
// uses. It still had to be kept up: a row per job issued, and on completion each job's entry moved
// from the pending to the done region of an index that only grows. Completing a 1000-job upload
// submission took 11 ms in the UPDATE of the outbox with it and 3.3 ms without (SQLite, 100,000
// pending), while the background process held the write lock that issuing waits for. Without it,
// a due check of a backlog that is all waiting for its retry time reads the pending entries
// instead of seeking (8–10 ms for 100,000, on the read connection, once a poll).
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('outbox_pending').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('outbox_pending').on('outbox').columns(['done_at', 'topic', 'available_at']).execute();
}
