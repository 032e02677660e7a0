// The core schema. Written with Kysely's schema builder only, so the same migration runs on
// SQLite and PostgreSQL. Money is bigint fen; timestamps are ISO text in Asia/Shanghai.
import { type Kysely, PostgresAdapter } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('merchants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('tax_id', 'text', (c) => c.notNull().unique())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('bank', 'text', (c) => c.notNull())
    .addColumn('account', 'text', (c) => c.notNull())
    .addColumn('region_code', 'text', (c) => c.notNull())
    .addColumn('daily_invoice_limit', 'integer')
    .addColumn('monthly_credit_fen', 'bigint')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('invoice_series')
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('last_sequence', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('invoice_series_pk', ['merchant_id', 'year'])
    .execute();

  await db.schema
    .createTable('chain_heads')
    .addColumn('scope', 'text', (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('length', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('invoices')
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('issue_date', 'text', (c) => c.notNull())
    .addColumn('buyer_name', 'text', (c) => c.notNull())
    .addColumn('buyer_tax_id', 'text', (c) => c.notNull())
    .addColumn('total_amount', 'bigint', (c) => c.notNull())
    .addColumn('total_tax', 'bigint', (c) => c.notNull())
    .addColumn('total_with_tax', 'bigint', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('chain_hash', 'text', (c) => c.notNull())
    .addColumn('chain_index', 'bigint', (c) => c.notNull())
    .addColumn('void_reason', 'text')
    .addColumn('status_changed_at', 'text')
    .addPrimaryKeyConstraint('invoices_pk', ['merchant_id', 'number'])
    .addUniqueConstraint('invoices_chain_unique', ['merchant_id', 'chain_index'])
    .execute();
  await db.schema.createIndex('invoices_by_date').on('invoices').columns(['merchant_id', 'issue_date', 'number']).execute();
  // Lists come newest first (chain_index desc); with the buyer in front, one buyer's invoices are read in that order.
  await db.schema.createIndex('invoices_by_buyer_tax_id').on('invoices').columns(['merchant_id', 'buyer_tax_id', 'chain_index']).execute();
  // No index on buyer_name: the search is a substring match, which no b-tree index can serve.

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('invoice_number', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['merchant_id', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_by_age').on('idempotency_keys').column('created_at').execute();

  await db.schema
    .createTable('usage')
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('invoice_count', 'integer', (c) => c.notNull())
    .addColumn('pre_tax_fen', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_pk', ['merchant_id', 'period'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'integer', (c) => (isPostgres(db) ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_by_merchant').on('audit_log').columns(['merchant_id', 'id']).execute();

  await db.schema
    .createTable('outbox')
    .addColumn('id', 'integer', (c) => (isPostgres(db) ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('available_at', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('done_at', 'text')
    .execute();
  await db.schema.createIndex('outbox_pending').on('outbox').columns(['done_at', 'topic', 'available_at']).execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();

  // /readyz writes here to prove the database takes writes right now.
  await db.schema
    .createTable('heartbeats')
    .addColumn('instance', 'text', (c) => c.primaryKey())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();

  for (const table of ['saved_buyers', 'saved_items'] as const) {
    let builder = db.schema
      .createTable(table)
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
      .addColumn('name', 'text', (c) => c.notNull());
    builder =
      table === 'saved_buyers'
        ? builder
            .addColumn('tax_id', 'text', (c) => c.notNull())
            .addColumn('address', 'text', (c) => c.notNull())
            .addColumn('phone', 'text', (c) => c.notNull())
            .addColumn('bank', 'text', (c) => c.notNull())
            .addColumn('account', 'text', (c) => c.notNull())
            .addColumn('email', 'text', (c) => c.notNull())
        : builder
            .addColumn('tax_code', 'text', (c) => c.notNull())
            .addColumn('spec', 'text', (c) => c.notNull())
            .addColumn('unit', 'text', (c) => c.notNull())
            .addColumn('unit_price', 'text', (c) => c.notNull())
            .addColumn('tax_rate', 'text', (c) => c.notNull());
    await builder.addColumn('updated_at', 'text', (c) => c.notNull()).addUniqueConstraint(`${table}_name_unique`, ['merchant_id', 'name']).execute();
  }
}

function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['heartbeats', 'saved_items', 'saved_buyers', 'api_keys', 'sessions', 'users', 'outbox', 'audit_log', 'usage', 'idempotency_keys', 'invoices', 'chain_heads', 'invoice_series', 'merchants']) {
    await db.schema.dropTable(table).execute();
  }
}
