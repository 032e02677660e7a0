// The migrator looks for its own tables among those of the connection's search path only. Listing
// the whole database (Kysely's default) reads every other schema's tables too, and fails when one
// of them is dropped at that moment, as other runs' migrations do in their schemas.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from '../../src/store/migrate.js';
import { SearchPathDialect } from '../../src/store/postgres-store.js';

const url = process.env.TEST_DATABASE_URL;

describe.skipIf(!url)('migrations on PostgreSQL', () => {
  const connections: Array<Kysely<any>> = [];

  const inSchema = async (): Promise<{ db: Kysely<any>; schema: string }> => {
    const schema = `fapiao_test_${process.env.FAPIAO_TEST_RUN ?? 'adhoc'}_${randomBytes(6).toString('hex')}`;
    const db = new Kysely<any>({ dialect: new SearchPathDialect({ pool: new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 1 }) }) });
    connections.push(db);
    await sql`create schema ${sql.id(schema)}`.execute(db);
    return { db, schema };
  };

  // The schemas are dropped with the rest of this run's (support/global-setup.ts).
  afterEach(async () => {
    for (const db of connections.splice(0)) await db.destroy();
  });

  it("look only at the tables of their own schema, while another schema's tables come and go", async () => {
    const mine = await inSchema();
    const theirs = await inSchema();
    await sql`create table churn (id serial primary key)`.execute(theirs.db);

    const churning = (async () => {
      for (let i = 0; i < 40; i++) {
        await sql`drop table churn`.execute(theirs.db);
        await sql`create table churn (id serial primary key)`.execute(theirs.db);
      }
    })();
    const applied = await migrateToLatest(mine.db, mine.schema);
    await churning;

    expect(applied.at(0)).toBe('001-core');
    const listed = await mine.db.introspection.getTables({ withInternalKyselyTables: true });
    expect(new Set(listed.map((t) => t.schema))).toEqual(new Set([mine.schema]));
    expect(listed.map((t) => t.name)).toEqual(expect.arrayContaining(['invoice_records', 'outbox', 'kysely_migration']));
  });
});
