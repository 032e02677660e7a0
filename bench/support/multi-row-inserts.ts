// Statements recorded from the store's own repositories (recording-driver.ts), written to
// PostgreSQL in bulk: the one-row INSERTs of one statement text go together as multi-row INSERTs,
// anything else (upserts) as it is. The caller holds the transaction.
import type pg from 'pg';

export interface Statement {
  sql: string;
  parameters: readonly unknown[];
}

/** PostgreSQL takes at most 65,535 parameters per statement. */
const PARAMETERS_PER_STATEMENT = 60_000;
const ONE_ROW_INSERT = /^(insert into "[a-z_]+" \([^)]*\) values )\((\$\d+(?:, \$\d+)*)\)$/;

export function multiRowWriter(client: pg.Client): (statements: readonly Statement[]) => Promise<void> {
  const texts = new Map<string, string>();
  /** The one-row INSERT as an INSERT of `rows` rows. */
  const forRows = (head: string, columns: number, rows: number) => {
    const key = `${head}|${rows}`;
    let text = texts.get(key);
    if (!text) {
      text = head + Array.from({ length: rows }, (_, r) => `(${Array.from({ length: columns }, (_, c) => `$${r * columns + c + 1}`).join(', ')})`).join(', ');
      texts.set(key, text);
    }
    return text;
  };
  return async (statements) => {
    const groups = new Map<string, Statement[]>();
    const others: Statement[] = [];
    for (const s of statements) {
      if (ONE_ROW_INSERT.test(s.sql)) groups.set(s.sql, [...(groups.get(s.sql) ?? []), s]);
      else others.push(s);
    }
    for (const [sql, rows] of groups) {
      const [, head, placeholders] = ONE_ROW_INSERT.exec(sql)!;
      const columns = placeholders!.split(', ').length;
      const perStatement = Math.floor(PARAMETERS_PER_STATEMENT / columns);
      for (let i = 0; i < rows.length; i += perStatement) {
        const slice = rows.slice(i, i + perStatement);
        await client.query(forRows(head!, columns, slice.length), slice.flatMap((s) => [...s.parameters]));
      }
    }
    for (const s of others) await client.query(s.sql, [...s.parameters]);
  };
}
