// Hot statements are built with Kysely once per dialect, not on every call: the query is built
// with named placeholders, compiled, and from then on only its parameters change. Building and
// compiling cost more than SQLite takes to run most of these statements. Each gets a name too,
// under which PostgreSQL connections prepare it once (postgres-store.ts).
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from './schema.js';

const MARK = '\u0000fapiao-arg:';
const ROW_MARK = '\u0000fapiao-row:';

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

/** Where a parameter's value comes from: a named argument, a field of row `row`, or the query itself. */
type Slot = { arg: string } | { row: number; field: string } | { constant: unknown };

type Values = Readonly<Record<string, unknown>>;

function slotOf(parameter: unknown): Slot {
  if (typeof parameter !== 'string') return { constant: parameter };
  if (parameter.startsWith(MARK)) return { arg: parameter.slice(MARK.length) };
  if (parameter.startsWith(ROW_MARK)) {
    const place = parameter.slice(ROW_MARK.length);
    const colon = place.indexOf(':');
    return { row: Number(place.slice(0, colon)), field: place.slice(colon + 1) };
  }
  return { constant: parameter };
}

function missing(what: string, name: string): Error {
  return new Error(`prepared query is missing ${what} "${name}"`);
}

export class PreparedQuery<Args extends Record<string, unknown>, Row> {
  private readonly compiled = new Map<string, { sql: string; slots: Slot[] }>();

  constructor(private readonly build: (db: Kysely<Database>) => Compilable<Row>) {}

  execute(db: Kysely<Database>, dialect: string, args: Args): Promise<QueryResult<Row>> {
    return this.executeRows(db, dialect, args, []);
  }

  /** Runs the statement with `shared` for its named arguments and `rows` for its row arguments. */
  executeRows(db: Kysely<Database>, dialect: string, shared: Values, rows: readonly Values[]): Promise<QueryResult<Row>> {
    let query = this.compiled.get(dialect);
    if (!query) {
      const { sql, parameters } = this.build(db).compile();
      query = { sql, slots: parameters.map(slotOf) };
      this.compiled.set(dialect, query);
      registerStatement(sql);
    }
    // Once per parameter of every statement on the issue path: nothing is built unless one is missing.
    const parameters = query.slots.map((slot) => {
      if ('constant' in slot) return slot.constant;
      if ('row' in slot) {
        const row = rows[slot.row];
        if (!row || !(slot.field in row)) throw missing(`field of row ${slot.row}`, slot.field);
        return row[slot.field];
      }
      if (!(slot.arg in shared)) throw missing('argument', slot.arg);
      return shared[slot.arg];
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
 * jobs and audit entries a statement each). `build` places row i's fields with `rowArg(name, i)`;
 * `execute` takes the rows as plain objects and sends them ROWS_PER_STATEMENT at a time (no
 * statement for none), each parameter read straight from its row's field (no renamed copy of the
 * rows: at 17 columns and 100 rows that copy cost more than SQLite took to insert them);
 * `shared` holds the values named once for the whole statement (with `arg`). The rows of every
 * statement come back together.
 */
export class PreparedRows<Fields extends Record<string, unknown>, Row> {
  private readonly byCount = new Map<number, PreparedQuery<Values, Row>>();

  constructor(private readonly build: (db: Kysely<Database>, rows: number) => Compilable<Row>) {}

  async execute(db: Kysely<Database>, dialect: string, rows: readonly Fields[], shared: Record<string, unknown> = {}): Promise<Row[]> {
    const answered: Row[] = [];
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const slice = rows.slice(start, start + ROWS_PER_STATEMENT);
      answered.push(...(await this.statementFor(slice.length).executeRows(db, dialect, shared, slice)).rows);
    }
    return answered;
  }

  private statementFor(count: number): PreparedQuery<Values, Row> {
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
  return `${ROW_MARK}${i}:${name}` as T;
}
