// Migration 011 drops the outbox index nothing reads (every query of pending jobs has its partial
// index), and undoing it puts the index back; jobs enqueued before it are claimed after it.
import { afterEach, describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';
import { addMerchant } from '../../src/app/merchants.js';
import { migrator } from '../../src/store/migrate.js';
import { validUscc } from '../support/http.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { undoneDownTo } from '../support/migrations.js';

const outboxIndexes = async (db: Kysely<any>, dialect: string, schema: string | undefined): Promise<string[]> => {
  const { rows } = dialect === 'sqlite'
    ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'outbox' and sql is not null`.execute(db)
    : await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'outbox' and schemaname = ${schema} and indexname not like '%pkey'`.execute(db);
  return rows.map((r) => r.name).sort();
};

for (const kind of storesUnderTest) {
  describe(`migration 011 (unused outbox index) on ${kind.name}`, () => {
    let opened: OpenedStore;

    afterEach(async () => {
      await opened.cleanup();
    });

    it('leaves only the indexes of pending jobs, puts the old one back when undone, and the jobs still flow', async () => {
      opened = await kind.open();
      const merchant = await addMerchant({ store: opened.store, clock: { now: () => new Date('2026-12-03T02:00:00Z') } }, { name: '销售方', taxId: validUscc(11), regionCode: '35' });
      const { db, schema } = opened.connect();
      try {
        expect(await outboxIndexes(db, kind.name, schema)).toEqual(['outbox_due', 'outbox_upload_pending']);

        const steps = migrator(db, schema);
        const down = await steps.migrateTo('010-void-report');
        expect(down.results?.map((r) => [r.migrationName, r.status])).toEqual(undoneDownTo('010-void-report'));
        expect(await outboxIndexes(db, kind.name, schema)).toEqual(['outbox_due', 'outbox_pending', 'outbox_upload_pending']);

        const at = '2026-12-03T10:00:00.000+08:00';
        await opened.store.write((tx) => tx.outbox.enqueue({ merchantId: merchant.id, topic: 'test.topic', subject: 'before 011', payload: '{}', at }));
        expect((await steps.migrateToLatest()).error).toBeUndefined();
        expect(await outboxIndexes(db, kind.name, schema)).toEqual(['outbox_due', 'outbox_upload_pending']);
      } finally {
        await db.destroy();
      }

      const store = await opened.reopen(); // prepared statements made before the schema changed are not reused
      try {
        const claim = { topic: 'test.topic', owner: 'test', now: '2026-12-03T10:00:01.000+08:00', leaseUntil: '2026-12-03T10:01:00.000+08:00', limit: 10 };
        expect(await store.read.outbox.hasDue('test.topic', claim.now)).toBe(true);
        expect((await store.write((tx) => tx.outbox.claim(claim))).map((j) => j.subject)).toEqual(['before 011']);
      } finally {
        await store.close();
      }
    });
  });
}
