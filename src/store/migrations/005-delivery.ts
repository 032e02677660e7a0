// Printing and delivery (R11, R21): printers and their backups, print jobs with their state,
// webhook endpoints, deliveries with every attempt, and each merchant's delivery settings with the
// fan-out cursor. Booleans are integers 0/1 on both dialects.
import { type Kysely, PostgresAdapter } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;

  await db.schema
    .createTable('printers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('backend', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('backup_printer_id', 'text')
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('health', 'text', (c) => c.notNull())
    .addColumn('health_detail', 'text', (c) => c.notNull())
    .addColumn('health_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('printers_name_unique', ['merchant_id', 'name'])
    .execute();

  await db.schema
    .createTable('print_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('invoice_number', 'text', (c) => c.notNull())
    .addColumn('printer_id', 'text', (c) => c.notNull())
    .addColumn('original_printer_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('total_attempts', 'integer', (c) => c.notNull())
    .addColumn('external_id', 'text')
    .addColumn('last_error', 'text')
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('submitted_at', 'text')
    .addColumn('printed_at', 'text')
    .addColumn('moved_at', 'text')
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('print_jobs_by_merchant').on('print_jobs').columns(['merchant_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('print_jobs_by_invoice').on('print_jobs').columns(['merchant_id', 'invoice_number']).execute();
  await db.schema.createIndex('print_jobs_by_printer').on('print_jobs').columns(['printer_id', 'state']).execute();

  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_endpoints_by_merchant').on('webhook_endpoints').columns(['merchant_id', 'created_at']).execute();

  await db.schema
    .createTable('deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull().references('merchants.id'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('endpoint_id', 'text')
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('window_started_at', 'text', (c) => c.notNull())
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('delivered_at', 'text')
    .addColumn('redeliveries', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('deliveries_by_merchant').on('deliveries').columns(['merchant_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('deliveries_by_subject').on('deliveries').columns(['merchant_id', 'subject']).execute();
  // One delivery per event, channel and destination: a fan-out that ran twice cannot send twice.
  await db.schema.createIndex('deliveries_once').on('deliveries').columns(['merchant_id', 'channel', 'event', 'subject', 'recipient']).unique().execute();

  await db.schema
    .createTable('delivery_attempts')
    .addColumn('id', 'integer', (c) => (postgres ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('delivery_id', 'text', (c) => c.notNull().references('deliveries.id'))
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .execute();
  await db.schema.createIndex('delivery_attempts_by_delivery').on('delivery_attempts').columns(['delivery_id', 'id']).execute();

  await db.schema
    .createTable('delivery_settings')
    .addColumn('merchant_id', 'text', (c) => c.primaryKey().references('merchants.id'))
    .addColumn('email_buyer', 'integer', (c) => c.notNull())
    .addColumn('fanout_index', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['delivery_settings', 'delivery_attempts', 'deliveries', 'webhook_endpoints', 'print_jobs', 'printers']) {
    await db.schema.dropTable(table).execute();
  }
}
