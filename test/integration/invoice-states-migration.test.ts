// Migration 008 splits each stored invoice into its sealed record and its lifecycle state, on
// databases that already hold invoices: every invoice comes through with its status, when it
// changed and why it was voided, unchanged, and undoing the migration gives the one table back.
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { migrator } from '../../src/store/migrate.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { undoneDownTo } from '../support/migrations.js';

const BEFORE = '007-upload-records';
/** The migrations after 008, newest first, as undoing them reports them. */

for (const kind of storesUnderTest) {
  describe(`migration 008 (invoice states) on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;

    afterEach(async () => {
      await api.close();
      await opened.cleanup();
    });

    it('keeps every invoice whole through the split and back: status, change time, void reason, content, chain', async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
      const numbers: string[] = [];
      for (let i = 0; i < 3; i++) numbers.push(json(await api.issue(api.a.keys.clerk, sampleInvoice())).number);
      const voided = await api.inject({ method: 'POST', url: `/api/v1/invoices/${numbers[1]}/void`, headers: { authorization: `Bearer ${api.a.keys.owner}` }, payload: { reason: '开错了' } });
      expect(voided.statusCode, voided.body).toBe(200);
      await opened.store.write((tx) => tx.uploads.markUploaded(api.a.id, [numbers[2]!], shanghaiTimestamp(api.clock.now())));

      const { db, schema } = opened.connect();
      try {
        const invoices = () =>
          db.selectFrom('invoices').select(['number', 'status', 'status_changed_at', 'void_reason', 'content', 'digest', 'chain_hash', 'chain_index', 'signature']).orderBy('number').execute();
        const before = await invoices();
        expect(before.map((i) => [i.status, i.void_reason])).toEqual([['issued', null], ['voided', '开错了'], ['uploaded', null]]);

        const steps = migrator(db, schema);
        const down = await steps.migrateTo(BEFORE);
        expect(down.error).toBeUndefined();
        expect(down.results?.map((r) => [r.migrationName, r.status])).toEqual(undoneDownTo(BEFORE));
        expect(await invoices()).toEqual(before); // one table again

        const up = await steps.migrateTo('008-invoice-states');
        expect(up.error).toBeUndefined();
        expect(up.results?.map((r) => [r.migrationName, r.status])).toEqual([['008-invoice-states', 'Success']]);
        expect(await invoices()).toEqual(before); // the view over the two tables
        const states = await db.selectFrom('invoice_states').select(['number', 'status', 'status_changed_at', 'void_reason']).orderBy('number').execute();
        expect(states).toEqual(before.map(({ number, status, status_changed_at, void_reason }) => ({ number, status, status_changed_at, void_reason })));
      } finally {
        await db.destroy();
      }
    });

    it('leaves the database as it was when the migration stops halfway, and runs whole once the cause is gone', async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
      const number = json(await api.issue(api.a.keys.clerk, sampleInvoice())).number;
      const { db, schema } = opened.connect();
      try {
        const steps = migrator(db, schema);
        expect((await steps.migrateTo(BEFORE)).error).toBeUndefined();
        const before = await db.selectFrom('invoices').selectAll().execute();
        // Its second step fails: after the table has been renamed, a table already holds the new name.
        await sql`create table invoice_states (blocker text)`.execute(db);
        const stopped = await steps.migrateTo('008-invoice-states');
        expect(stopped.error).toBeDefined();
        expect(stopped.results?.map((r) => [r.migrationName, r.status])).toEqual([['008-invoice-states', 'Error']]);
        expect(await db.selectFrom('invoices').selectAll().execute()).toEqual(before); // still the one table, not renamed
        expect(await db.selectFrom('invoice_states').selectAll().execute()).toEqual([]);

        await db.schema.dropTable('invoice_states').execute();
        expect((await steps.migrateTo('008-invoice-states')).error).toBeUndefined();
        expect((await db.selectFrom('invoices').select(['number', 'status']).execute())).toEqual([{ number, status: 'issued' }]);
      } finally {
        await db.destroy();
      }
    });
  });
}
