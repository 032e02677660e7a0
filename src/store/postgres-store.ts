// PostgreSQL: any number of stateless instances share one database. Each write is one
// transaction; serialization failures, deadlocks and the unique-key race of two instances
// creating the same row are retried transparently (the use case re-reads and decides again).
import pg from 'pg';
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from '../app/ports.js';
import { repositories } from './repositories.js';
import { migrateToLatest } from './migrate.js';
import { translateDriverError } from './driver-errors.js';
import { heartbeat } from './heartbeat.js';

export interface PostgresOptions {
  url: string;
  /** A schema of its own (tests use one per run so runs never see each other's data). */
  schema?: string;
  poolSize?: number;
}

const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 5;

function connect(options: PostgresOptions): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    // Fail fast when the database is away instead of hanging a clerk's request.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 10_000,
    ...(options.schema && { options: `-c search_path=${options.schema}` }),
  });
  pool.on('error', () => {}); // a dropped idle connection is replaced on next use
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export async function migratePostgres(options: PostgresOptions): Promise<string[]> {
  const db = connect({ ...options, poolSize: 1 });
  try {
    return await migrateToLatest(db, options.schema);
  } finally {
    await db.destroy();
  }
}

export async function openPostgresStore(options: PostgresOptions, migrate: boolean): Promise<Store> {
  const db = connect(options);
  if (migrate) await migrateToLatest(db, options.schema);

  const write: Store['write'] = async (work) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.transaction().execute((trx: Transaction<Database>) => work(repositories(trx, 'postgres')));
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (attempt < MAX_ATTEMPTS && code && RETRYABLE.has(code)) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
          continue;
        }
        throw translateDriverError(error);
      }
    }
  };
  return {
    dialect: 'postgres',
    read: repositories(db, 'postgres'),
    write,
    checkWritable: () => heartbeat(write, db),
    close: () => db.destroy(),
  };
}
