// Tax-service credentials, alerts and reconciliation (对账) reports. Kysely's schema builder only,
// so the same migration runs on SQLite and PostgreSQL.
import { type Kysely, PostgresAdapter } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  const identity = (c: any) => (db.getExecutor().adapter instanceof PostgresAdapter ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement());

  // The per-merchant signing key at one tax service (the sandbox enrols merchants itself). Keyed by
  // the upstream URL too: a merchant moved from the sandbox to the real service needs a new key.
  await db.schema
    .createTable('upstream_credentials')
    .addColumn('seller_tax_id', 'text', (c) => c.notNull())
    .addColumn('upstream_url', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('upstream_credentials_pk', ['seller_tax_id', 'upstream_url'])
    .execute();

  await db.schema
    .createTable('alerts')
    .addColumn('id', 'integer', identity)
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('acknowledged_at', 'text')
    .addColumn('acknowledged_by', 'text')
    .execute();
  await db.schema.createIndex('alerts_by_merchant').on('alerts').columns(['merchant_id', 'id']).execute();

  await db.schema
    .createTable('reconciliations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('date', 'text', (c) => c.notNull())
    .addColumn('ran_at', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('local_count', 'integer', (c) => c.notNull())
    .addColumn('upstream_count', 'integer', (c) => c.notNull())
    .addColumn('matched', 'integer', (c) => c.notNull())
    .addColumn('pending', 'integer', (c) => c.notNull()) // issued, not yet uploaded: not a difference yet
    .addColumn('differences', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('reconciliations_by_merchant').on('reconciliations').columns(['merchant_id', 'date', 'ran_at']).execute();

  await db.schema
    .createTable('reconciliation_items')
    .addColumn('id', 'integer', identity)
    .addColumn('reconciliation_id', 'text', (c) => c.notNull().references('reconciliations.id'))
    .addColumn('merchant_id', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('difference', 'text', (c) => c.notNull()) // missing_upstream | missing_locally | digest_mismatch
    .addColumn('local_digest', 'text')
    .addColumn('upstream_digest', 'text')
    .addColumn('local_status', 'text')
    .addColumn('resolution', 'text') // reuploaded | investigated
    .addColumn('resolved_at', 'text')
    .addColumn('resolved_by', 'text')
    .addColumn('note', 'text')
    .execute();
  await db.schema.createIndex('reconciliation_items_by_report').on('reconciliation_items').columns(['reconciliation_id', 'id']).execute();

  // Leases for work that one instance of many should do (the daily reconciliation).
  await db.schema
    .createTable('job_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('owner', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('last_done', 'text')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['job_leases', 'reconciliation_items', 'reconciliations', 'alerts', 'upstream_credentials']) await db.schema.dropTable(table).execute();
}
