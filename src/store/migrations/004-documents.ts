// Documents and verification (R20, R22): every invoice's Ed25519 signature and key id, the
// platform's public signing keys (in the database, so every instance can check every signature,
// whichever instance signed), per-invoice daily counters for public verification, and an index
// to find an invoice by number alone (verifiers do not know the merchant).
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('invoices').addColumn('signature', 'text').execute();
  await db.schema.alterTable('invoices').addColumn('signing_key_id', 'text').execute();
  await db.schema.createIndex('invoices_by_number').on('invoices').column('number').execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text')
    .execute();

  // 查验 is limited per invoice per day, like the national platform does.
  await db.schema
    .createTable('verification_counts')
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('verification_counts_pk', ['merchant_id', 'number', 'day'])
    .execute();
  await db.schema.createIndex('verification_counts_by_day').on('verification_counts').column('day').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('verification_counts').execute();
  await db.schema.dropTable('signing_keys').execute();
  await db.schema.dropIndex('invoices_by_number').execute();
  await db.schema.alterTable('invoices').dropColumn('signing_key_id').execute();
  await db.schema.alterTable('invoices').dropColumn('signature').execute();
}
