// Kysely's SQLite driver prepares every statement anew on each call; preparing costs more than
// running most of our statements. Queries are built from a fixed set of shapes, so caching the
// prepared statement by its SQL text saves that work with a small, bounded map.
import type { Database as SQLiteDatabase, Statement } from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

const MAX_STATEMENTS = 500;

export function withStatementCache(connection: SQLiteDatabase): SqliteDatabase {
  const cache = new Map<string, Statement>();
  return {
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (!statement) {
        statement = connection.prepare(sql);
        if (cache.size >= MAX_STATEMENTS) cache.delete(cache.keys().next().value!);
        cache.set(sql, statement);
      }
      return statement;
    },
    close: () => connection.close(),
  };
}
