// With migration 011 the outbox keeps no index over done rows: the queries of pending jobs (the due
// check, the claim, the lease holders) read the partial index of pending rows, and a claim walks
// it in id order instead of sorting a backlog (100,000 rows after a long outage) to take its first
// thousand. The statements are the repositories' own, captured as they run, and explained by SQLite.
import SQLite from 'better-sqlite3';
import { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import { repositories } from '../../src/store/repositories.js';
import type { Database } from '../../src/store/schema.js';
import { SqliteDialectWithTransactionalDdl } from '../../src/store/sqlite-store.js';

let connection: SQLite.Database;
let db: Kysely<Database>;
let ran: Array<{ sql: string; parameters: readonly unknown[] }>;

beforeEach(async () => {
  connection = new SQLite(':memory:');
  ran = [];
  db = new Kysely<Database>({
    dialect: new SqliteDialectWithTransactionalDdl({ database: connection }),
    log: (event) => void (event.level === 'query' && ran.push({ sql: event.query.sql, parameters: event.query.parameters })),
  });
  await migrateToLatest(db);
  ran = [];
});

afterEach(async () => {
  await db.destroy();
});

/** SQLite's plan of the one statement `work` ran. */
async function planOf(work: () => Promise<unknown>): Promise<string> {
  ran = [];
  await work();
  expect(ran).toHaveLength(1);
  const [{ sql, parameters }] = ran as [(typeof ran)[number]];
  return (connection.prepare(`explain query plan ${sql}`).all(...parameters) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
}

const now = '2026-12-03T10:00:00.000+08:00';

describe('queries of pending outbox jobs after migration 011', () => {
  it('a due check reads the pending jobs of its topic', async () => {
    const plan = await planOf(() => repositories(db, 'sqlite').outbox.hasDue('invoice.upload', now));
    expect(plan).toContain('USING INDEX outbox_due (topic=?)');
  });

  it('a claim walks the pending jobs in id order, with no sort', async () => {
    const plan = await planOf(() => repositories(db, 'sqlite').outbox.claim({ topic: 'invoice.upload', owner: 'test', now, leaseUntil: now, limit: 1000 }));
    expect(plan).toContain('USING INDEX outbox_due (topic=?)');
    expect(plan).not.toContain('TEMP B-TREE');
  });

  it('finding the lease holders reads only the pending jobs', async () => {
    const plan = await planOf(() => repositories(db, 'sqlite').leases.holders(now));
    expect(plan).toContain('outbox USING INDEX outbox_due');
  });
});
