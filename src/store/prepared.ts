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

/** Gives a statement written by hand a name too, so PostgreSQL connections prepare it once. */
export function registerStatement(sql: string): void {
  if (!statementNames.has(sql)) statementNames.set(sql, `fapiao_${statementNames.size + 1}`);
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
      registerStatement(sql);
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

/**
 * Rows per multi-row statement: an issue batch (at most ISSUE_BATCH_MAX) fits one, and SQLite's
 * limit of 32,766 parameters is far off (at most 17 columns a row).
 */
const ROWS_PER_STATEMENT = 100;

/**
 * A multi-row statement prepared once per row count (an issue batch writes its invoices, keys,
 * jobs and audit entries a statement each). `build` names row i's values `${name}${i}`;
 * `execute` takes the rows as plain objects, numbers their fields the same way and sends them
 * ROWS_PER_STATEMENT at a time (no statement for none); `shared` holds the values named once for
 * the whole statement (with `arg`). The rows of every statement come back together.
 */
export class PreparedRows<Fields extends Record<string, unknown>, Row> {
  private readonly byCount = new Map<number, PreparedQuery<Record<string, unknown>, Row>>();

  constructor(private readonly build: (db: Kysely<Database>, rows: number) => Compilable<Row>) {}

  async execute(db: Kysely<Database>, dialect: string, rows: readonly Fields[], shared: Record<string, unknown> = {}): Promise<Row[]> {
    const answered: Row[] = [];
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const slice = rows.slice(start, start + ROWS_PER_STATEMENT);
      const args: Record<string, unknown> = { ...shared };
      slice.forEach((row, i) => {
        for (const [name, value] of Object.entries(row)) args[`${name}${i}`] = value;
      });
      answered.push(...(await this.statementFor(slice.length).execute(db, dialect, args)).rows);
    }
    return answered;
  }

  private statementFor(count: number): PreparedQuery<Record<string, unknown>, Row> {
    let query = this.byCount.get(count);
    if (!query) {
      query = new PreparedQuery((built) => this.build(built, count));
      this.byCount.set(count, query);
    }
    return query;
  }
}

export function prepareRows<Fields extends Record<string, unknown>, Row>(build: (db: Kysely<Database>, rows: number) => Compilable<Row>): PreparedRows<Fields, Row> {
  return new PreparedRows<Fields, Row>(build);
}

/** Row i's placeholder for `name` in a statement built for `prepareRows`. */
export function rowArg<T = never>(name: string, i: number): T {
  return arg<T>(`${name}${i}`);
}
