// One ordered set of migrations for both dialects. Applied on start and by `fapiao migrate`.
import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import * as core from './migrations/001-core.js';
import * as upstream from './migrations/002-upstream.js';
import * as upstreamAlerts from './migrations/003-upstream-alerts.js';
import * as documents from './migrations/004-documents.js';
import * as delivery from './migrations/005-delivery.js';
import * as buyerDateIndex from './migrations/006-buyer-date-index.js';
import * as uploadRecords from './migrations/007-upload-records.js';
import * as invoiceStates from './migrations/008-invoice-states.js';
import * as creditSources from './migrations/009-credit-sources.js';
import * as voidReport from './migrations/010-void-report.js';
import * as dropOutboxPending from './migrations/011-drop-outbox-pending.js';
import * as uploadWireRecords from './migrations/012-upload-wire-records.js';
import * as contingencyAlerts from './migrations/013-contingency-alerts.js';
import * as numberBlockRequests from './migrations/014-number-block-requests.js';

const migrations: Record<string, Migration> = {
  '001-core': core,
  '002-upstream': upstream,
  '003-upstream-alerts': upstreamAlerts,
  '004-documents': documents,
  '005-delivery': delivery,
  '006-buyer-date-index': buyerDateIndex,
  '007-upload-records': uploadRecords,
  '008-invoice-states': invoiceStates,
  '009-credit-sources': creditSources,
  '010-void-report': voidReport,
  '011-drop-outbox-pending': dropOutboxPending,
  '012-upload-wire-records': uploadWireRecords,
  '013-contingency-alerts': contingencyAlerts,
  '014-number-block-requests': numberBlockRequests,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Every migration's name, oldest first. */
export const MIGRATION_NAMES = Object.keys(migrations).sort();

export const LATEST_SCHEMA_VERSION = MIGRATION_NAMES.at(-1)!;

/** `schema` keeps the migration bookkeeping beside the tables when a PostgreSQL schema is used. */
export function migrator(db: Kysely<any>, schema?: string): Migrator {
  return new Migrator({ db, provider, ...(schema && { migrationTableSchema: schema }) });
}

export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<string[]> {
  const { error, results } = await migrator(db, schema).migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
