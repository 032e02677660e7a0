// Migration 013 records when a contingency episode was alerted: an episode open at the migration was
// alerted when it began (the started alert then came at once), so its end is still told; an online
// merchant has no episode to tell of. Undone, the column goes and the states stay.
import { afterEach, describe, expect, it } from 'vitest';
import { addMerchant } from '../../src/app/merchants.js';
import { migrator } from '../../src/store/migrate.js';
import { validUscc } from '../support/http.js';
import { undoneDownTo } from '../support/migrations.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';

for (const kind of storesUnderTest) {
  describe(`migration 013 (contingency alerts) on ${kind.name}`, () => {
    let opened: OpenedStore;

    afterEach(async () => {
      await opened.cleanup();
    });

    it('takes an open episode as alerted when it began, an online merchant as never alerted, and undoes cleanly', async () => {
      opened = await kind.open();
      const clock = { now: () => new Date('2026-12-05T02:00:00Z') };
      const [offline, online] = [
        await addMerchant({ store: opened.store, clock }, { name: '离线商户', taxId: validUscc(21), regionCode: '35' }),
        await addMerchant({ store: opened.store, clock }, { name: '在线商户', taxId: validUscc(23), regionCode: '35' }),
      ];
      const since = '2026-12-05T09:58:00.000+08:00';
      const { db, schema } = opened.connect();
      try {
        const steps = migrator(db, schema);
        expect((await steps.migrateTo('012-upload-wire-records')).results?.map((r) => [r.migrationName, r.status])).toEqual(undoneDownTo('012-upload-wire-records'));
        await db.insertInto('upstream_state').values([
          { merchant_id: offline.id, mode: 'contingency', since, last_error: '4001 unreachable', last_success_at: null, warned_at: null },
          { merchant_id: online.id, mode: 'online', since, last_error: null, last_success_at: since, warned_at: null },
        ]).execute();
        expect((await steps.migrateToLatest()).error).toBeUndefined();
        const alerted = await db.selectFrom('upstream_state').select(['merchant_id', 'alerted_at']).orderBy('merchant_id').execute();
        expect(Object.fromEntries(alerted.map((r) => [r.merchant_id, r.alerted_at]))).toEqual({ [offline.id]: since, [online.id]: null });
        await steps.migrateTo('012-upload-wire-records');
        expect(await db.selectFrom('upstream_state').select(['merchant_id', 'mode']).orderBy('mode').execute()).toEqual([
          { merchant_id: offline.id, mode: 'contingency' }, { merchant_id: online.id, mode: 'online' },
        ]);
        expect((await steps.migrateToLatest()).error).toBeUndefined();
      } finally {
        await db.destroy();
      }
    });
  });
}
