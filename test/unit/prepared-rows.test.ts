// Multi-row statements prepared once: each parameter is read from its own row's field, batches
// larger than one statement are split, and a row without a field the statement needs is refused
// before anything is sent.
import SQLite from 'better-sqlite3';
import { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hot } from '../../src/store/hot-queries.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import type { Database } from '../../src/store/schema.js';
import { SqliteDialectWithTransactionalDdl } from '../../src/store/sqlite-store.js';

let db: Kysely<Database>;

beforeEach(async () => {
  db = new Kysely<Database>({ dialect: new SqliteDialectWithTransactionalDdl({ database: new SQLite(':memory:') }) });
  await migrateToLatest(db);
  await db.insertInto('merchants').values({ id: 'm1', name: '示例', tax_id: '91350100M000100Y43', address: '', phone: '', bank: '', account: '', region_code: '35', daily_invoice_limit: null, operator_credit_fen: null, granted_credit_fen: null, created_at: '2026-12-03T10:00:00+08:00', contingency_terms: null, terms_fetched_at: null, offline_since: null }).execute();
});

afterEach(async () => {
  await db.destroy();
});

const keyRow = (i: number) => ({ merchantId: 'm1', key: `key-${i}`, requestHash: `hash-${i}`, invoiceNumber: String(i).padStart(20, '0'), createdAt: `2026-12-03T10:00:${String(i % 60).padStart(2, '0')}+08:00` });

describe('a prepared multi-row statement', () => {
  it('writes every row with its own values, over more rows than one statement holds', async () => {
    const rows = Array.from({ length: 250 }, (_, i) => keyRow(i));
    await hot.insertIdempotencyKeys.execute(db, 'sqlite', rows);

    const found = await hot.findIdempotencyKeys.execute(db, 'sqlite', rows.map((r) => ({ key: r.key })), { merchantId: 'm1' });
    expect(found).toHaveLength(250);
    const byKey = new Map(found.map((f) => [f.key, f]));
    for (const row of rows) {
      expect(byKey.get(row.key)).toEqual({ key: row.key, request_hash: row.requestHash, invoice_number: row.invoiceNumber, created_at: row.createdAt });
    }
  });

  it('takes values named once for the whole statement from the shared arguments', async () => {
    await hot.insertIdempotencyKeys.execute(db, 'sqlite', [keyRow(1), keyRow(2)]);
    expect(await hot.findIdempotencyKeys.execute(db, 'sqlite', [{ key: 'key-1' }, { key: 'key-2' }], { merchantId: 'someone else' })).toEqual([]);
  });

  it('refuses a row without a field the statement needs, and writes nothing', async () => {
    const { requestHash: _, ...withoutHash } = keyRow(2);
    await expect(hot.insertIdempotencyKeys.execute(db, 'sqlite', [keyRow(1), withoutHash as never])).rejects.toThrow('missing field of row 1 "requestHash"');
    expect(await db.selectFrom('idempotency_keys').selectAll().execute()).toEqual([]);
  });

  it('sends no statement for no rows', async () => {
    expect(await hot.insertIdempotencyKeys.execute(db, 'sqlite', [])).toEqual([]);
  });
});
