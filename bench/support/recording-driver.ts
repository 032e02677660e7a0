// The store's own SQL, recorded instead of run: a Kysely driver that keeps each compiled query,
// so the benchmarks can fill a million real, chained invoices in big transactions.
import {
  type CompiledQuery, type DatabaseConnection, type Driver, Kysely, type QueryResult,
  PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
} from 'kysely';
import type { Database } from '../../src/store/schema.js';

export class RecordingDriver implements Driver {
  readonly statements: CompiledQuery[] = [];
  private readonly connection: DatabaseConnection = {
    executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      this.statements.push(query);
      return { rows: [] };
    },
    streamQuery: () => {
      throw new Error('streaming is not recorded');
    },
  };
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.connection;
  }
  async beginTransaction(): Promise<void> {}
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

/** A Kysely of the given dialect whose statements go to `driver` instead of a database. */
export function recordingKysely(dialect: 'sqlite' | 'postgres', driver: Driver): Kysely<Database> {
  return new Kysely<Database>({
    dialect: dialect === 'postgres'
      ? { createAdapter: () => new PostgresAdapter(), createDriver: () => driver, createQueryCompiler: () => new PostgresQueryCompiler(), createIntrospector: (k) => new PostgresIntrospector(k) }
      : { createAdapter: () => new SqliteAdapter(), createDriver: () => driver, createQueryCompiler: () => new SqliteQueryCompiler(), createIntrospector: (k) => new SqliteIntrospector(k) },
  });
}
