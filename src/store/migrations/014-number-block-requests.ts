// A number block asked of the tax service is written down, with its request id, before the call is
// made, and crossed off in the transaction that stores the block. A process killed between the
// tax service granting a block and storing it (or a call whose answer was lost) leaves the request
// here, and the next top-up sends it again with the same id: the tax service answers with the block
// it granted then, instead of granting another and leaving the first unused, a gap in the series.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('number_block_requests')
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('number_block_requests_pk', ['merchant_id', 'request_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('number_block_requests').execute();
}
