// PostgreSQL: any number of stateless instances share one database. Each write is one
// transaction; serialization failures, deadlocks and the unique-key race of two instances
// creating the same row are retried transparently (the use case re-reads and decides again).
// When the database is away (stopped, crashed, failing over) every call fails fast with 5001 and
// Retry-After instead of hanging or crashing the process, and the pool reconnects by itself when
// it is back; a DATABASE_URL naming several hosts follows the primary (pg-hosts.ts).
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type DatabaseIntrospector, type PostgresPool, type PostgresPoolClient, type TableMetadata, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from '../app/ports.js';
import { repositories } from './repositories.js';
import { migrateToLatest } from './migrate.js';
import { translateDriverError } from './driver-errors.js';
import { preparedName } from './prepared.js';
import { SendWithNext } from './pg-send-with-next.js';
import { heartbeat } from './heartbeat.js';
import { hostListClient, parseHostList } from './pg-hosts.js';
import { ApiKeyCache } from './api-key-cache.js';
import { notifyingRevocations, postgresRevocationFeed } from './pg-api-key-cache.js';
import { Fault, faults } from '../domain/faults.js';

export interface PostgresOptions {
  url: string;
  /** A schema of its own (tests use one per run so runs never see each other's data). */
  schema?: string;
  poolSize?: number;
  /**
   * Prepare the hot statements (prepared.ts) by name, once per connection, instead of having the
   * server parse and plan them on every call: GET of one invoice went from about 1,450 to 2,050
   * answers a second at 16 clients. Off behind a pooler that cannot keep named statements across
   * transactions (PgBouncer before 1.21, or without max_prepared_statements).
   */
  namedStatements?: boolean;
}

const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 5;

/** How long a new connection may take, probes of a host list included. */
const CONNECT_TIMEOUT_MS = 3_000;
/** No statement runs longer on the server… */
const STATEMENT_TIMEOUT_MS = 10_000;
/** …and no answer is awaited longer on our side, so a cut network cannot hang a request either. */
const QUERY_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 2_000;

function connect(options: PostgresOptions): { db: Kysely<Database>; newClient: () => pg.Client } {
  const hostList = parseHostList(options.url);
  const settings: pg.ClientConfig = {
    connectionString: hostList?.url ?? options.url,
    // Fail fast when the database is away instead of hanging a clerk's request.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    // Every statement goes on the wire when it is made, not after the one before it is answered, so
    // statements sent together (pg-send-with-next.ts) cost one round trip.
    pipeline: true,
    ...(options.schema && { options: `-c search_path=${options.schema}` }),
  };
  // Several hosts (a primary and its standbys): each new connection goes to the one taking writes.
  const Client = hostList ? hostListClient(hostList, { ...settings, connectionTimeoutMillis: CONNECT_TIMEOUT_MS / 2 }) : pg.Client;
  const pool = new pg.Pool({
    ...settings,
    max: options.poolSize ?? 10,
    idleTimeoutMillis: 30_000,
    ...(hostList && { Client: Client as unknown as new () => pg.ClientBase }),
  });
  pool.on('error', () => {}); // a dropped idle connection is replaced on next use
  // A connection that drops while a request holds it emits 'error' too; unheard, that event would
  // end the process. The request's own query fails and is answered 5001.
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    db: new Kysely<Database>({ dialect: new SearchPathDialect({ pool: faultTranslatingPool(pool, options.namedStatements !== false) }) }),
    // The LISTEN connection sends one statement at a time; in pipeline mode its end() would wait for
    // a statement still on its way (a dead network: the whole query timeout) instead of closing.
    newClient: () => new Client({ ...settings, pipeline: false }),
  };
}

/**
 * Kysely's migrator asks whether its tables exist by listing every table of the whole database with
 * its columns, resolving each column's serial sequence by the table's name. A table another
 * session drops meanwhile makes that fail ("relation … does not exist"): the test suite's other
 * runs migrate up and down in schemas of their own all the time. The migrator only needs the names
 * of the tables in this connection's search path, which is all this dialect's introspector lists.
 */
export class SearchPathDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    const tables = async (): Promise<TableMetadata[]> => {
      const { rows } = await sql<{ name: string; schema: string; is_view: boolean }>`
        select c.relname as name, ns.nspname as schema, c.relkind = 'v' as is_view
        from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
        where c.relkind in ('r', 'v', 'p') and ns.nspname = any (current_schemas(false))`.execute(db);
      return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.is_view, columns: [] }));
    };
    const schemas = super.createIntrospector(db);
    return { getSchemas: () => schemas.getSchemas(), getTables: tables, getMetadata: async () => ({ tables: await tables() }) };
  }
}

/**
 * The pool as Kysely sees it, with every driver error translated where it happens, so reads
 * outside a write transaction (authentication, queries, /readyz) answer 5001 like writes do.
 * A connection that failed that way is discarded when released, never handed out again. Hot
 * statements go by their prepared name when `namedStatements` is on. A `begin` and a statement
 * registered with `sendWithNext` go out with the statement after them (pg-send-with-next.ts).
 */
function faultTranslatingPool(pool: pg.Pool, namedStatements: boolean): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw translateDriverError(error);
      }
      let broken: Error | undefined;
      const statements = new SendWithNext(async (text, values) => {
        try {
          const name = namedStatements ? preparedName(text) : undefined;
          return await (name ? client.query({ name, text, values }) : client.query(text, values));
        } catch (error) {
          const translated = translateDriverError(error);
          if (translated instanceof Fault && translated.spec === faults.STORAGE_UNAVAILABLE) broken = error as Error;
          throw translated;
        }
      });
      return {
        query: (async (text: string, parameters: ReadonlyArray<unknown>) => {
          if (broken) throw translateDriverError(broken); // do not queue behind a dead or stuck query
          return statements.query(text, parameters as unknown[]);
        }) as unknown as PostgresPoolClient['query'],
        release: () => {
          statements.drop();
          client.release(broken);
        },
      };
    },
    end: () => pool.end(),
  };
}

export async function migratePostgres(options: PostgresOptions): Promise<string[]> {
  const { db } = connect({ ...options, poolSize: 1 });
  try {
    return await migrateToLatest(db, options.schema);
  } finally {
    await db.destroy();
  }
}

export async function openPostgresStore(options: PostgresOptions, migrate: boolean): Promise<Store> {
  const { db, newClient } = connect(options);
  if (migrate) await migrateToLatest(db, options.schema);
  const apiKeyCache = new ApiKeyCache(postgresRevocationFeed(newClient));

  const write: Store['write'] = async (work) => {
    for (let attempt = 1; ; attempt++) {
      let revokedHere = false;
      try {
        const result = await db.transaction().execute((trx: Transaction<Database>) =>
          work(notifyingRevocations(repositories(trx, 'postgres'), trx, () => (revokedHere = true))));
        if (revokedHere) apiKeyCache.revoked();
        return result;
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
  const read = repositories(db, 'postgres');
  return {
    dialect: 'postgres',
    readsKeysBeforeLock: true,
    read: { ...read, apiKeys: { ...read.apiKeys, get: (id) => apiKeyCache.get(id, () => read.apiKeys.get(id)) } },
    write,
    checkWritable: () => heartbeat(write, db),
    close: async () => {
      await apiKeyCache.close();
      await db.destroy();
    },
  };
}
