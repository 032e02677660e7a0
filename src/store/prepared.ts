// Hot statements are built with Kysely once per dialect, not on every call: the query is built
// with named placeholders, compiled, and from then on only its parameters change. Building and
// compiling cost more than SQLite takes to run most of these statements. Each gets a name too,
// under which PostgreSQL connections prepare it once (postgres-store.ts).
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from './schema.js';

const MARK = '\u0000fapiao-arg:';

const statementNames = new Map<string, string>();

/** The name a hot statement is prepared under on PostgreSQL (once per connection), by its text. */
export function preparedName(sql: string): string | undefined {
  return statementNames.get(sql);
}

/** A named placeholder to put where a value goes when building a prepared query. */
export function arg<T = never>(name: string): T {
  return `${MARK}${name}` as T;
}

type Slot = { arg: string } | { constant: unknown };

export class PreparedQuery<Args extends Record<string, unknown>, Row> {
  private readonly compiled = new Map<string, { sql: string; slots: Slot[] }>();

  constructor(private readonly build: (db: Kysely<Database>) => Compilable<Row>) {}

  execute(db: Kysely<Database>, dialect: string, args: Args): Promise<QueryResult<Row>> {
    let query = this.compiled.get(dialect);
    if (!query) {
      const { sql, parameters } = this.build(db).compile();
      const slots = parameters.map((p): Slot => (typeof p === 'string' && p.startsWith(MARK) ? { arg: p.slice(MARK.length) } : { constant: p }));
      query = { sql, slots };
      this.compiled.set(dialect, query);
      if (!statementNames.has(sql)) statementNames.set(sql, `fapiao_${statementNames.size + 1}`);
    }
    const parameters = query.slots.map((slot) => {
      if (!('arg' in slot)) return slot.constant;
      if (!(slot.arg in args)) throw new Error(`prepared query is missing argument "${slot.arg}"`);
      return args[slot.arg];
    });
    return db.executeQuery(CompiledQuery.raw(query.sql, parameters)) as Promise<QueryResult<Row>>;
  }
}

export function prepare<Args extends Record<string, unknown>, Row>(build: (db: Kysely<Database>) => Compilable<Row>): PreparedQuery<Args, Row> {
  return new PreparedQuery<Args, Row>(build);
}
