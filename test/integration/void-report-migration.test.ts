// Migration 009 on a database that already holds voided invoices: their voids were queued but never
// sent, so each becomes pending (the void worker delivers it); one whose upload job completed without
// a problem shows as uploaded (not pending forever); one the tax service rejected shows rejected.
import { afterEach, describe, expect, it } from 'vitest';
import { migrator } from '../../src/store/migrate.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { postgres, storesUnderTest, type OpenedStore } from '../support/stores.js';
import { appliedAfter } from '../support/migrations.js';

// The migration runs here under a store that is already serving. On PostgreSQL a statement prepared
// by name before it would keep the old view's columns (a server migrates before it serves), so this
// store sends its statements unnamed.
const stores = storesUnderTest.map((k) => (k.name === 'postgres' ? postgres(process.env.TEST_DATABASE_URL!, { namedStatements: false }) : k));

for (const kind of stores) {
  describe(`migration 009 (void reports) on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;

    afterEach(async () => {
      await api.close();
      await opened.cleanup();
    });

    it('opens a pending void for every voided invoice and keeps whether its upload was accepted', async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
      const [uploaded, notYet, rejected, untouched] = await Promise.all([0, 1, 2, 3].map(async () => json(await api.issue(api.a.keys.clerk, sampleInvoice())).number as string));
      const at = shanghaiTimestamp(api.clock.now());
      const doneUpload = (number: string) => opened.exec(`update outbox set done_at = '${at}' where topic = 'invoice.upload' and subject = '${number}'`);
      await doneUpload(uploaded!);
      await opened.store.write((tx) => tx.uploads.markUploaded(api.a.id, [uploaded!], at));
      await doneUpload(rejected!);
      await opened.store.write(async (tx) => {
        await tx.uploads.recordProblem({ merchantId: api.a.id, number: rejected!, state: 'rejected', reasonCode: 'RULE', reason: 'no', localDigest: 'x', heldDigest: null, upstreamRecord: null, at });
        await tx.invoices.setStatus(api.a.id, rejected!, { status: 'rejected', at, reason: 'RULE: no' });
      });
      for (const number of [uploaded, notYet, rejected]) {
        const voided = await api.inject({ method: 'POST', url: `/api/v1/invoices/${number}/void`, headers: { authorization: `Bearer ${api.a.keys.owner}` }, payload: { reason: '开错了' } });
        expect(voided.statusCode, voided.body).toBe(200);
      }

      // Back to the schema before this version, then forward again: what was there is worked out anew.
      const { db, schema } = opened.connect();
      try {
        const steps = migrator(db, schema);
        expect((await steps.migrateTo('009-credit-sources')).error).toBeUndefined();
        const up = await steps.migrateToLatest();
        expect(up.error).toBeUndefined();
        expect(up.results?.map((r) => [r.migrationName, r.status])).toEqual(appliedAfter('009-credit-sources'));
      } finally {
        await db.destroy();
      }

      const view = async (number: string) => json(await api.get(api.a.keys.owner, `/api/v1/invoices/${number}`));
      expect(await view(uploaded!)).toMatchObject({ status: 'voided', upload: { state: 'uploaded' }, void_report: { state: 'pending', waiting_for: 'delivery' } });
      expect(await view(notYet!)).toMatchObject({ status: 'voided', upload: { state: 'pending' }, void_report: { state: 'pending', waiting_for: 'upload' } });
      expect(await view(rejected!)).toMatchObject({ status: 'voided', upload: { state: 'rejected' }, void_report: { state: 'pending', waiting_for: null } });
      expect(await view(untouched!)).toMatchObject({ status: 'issued', upload: { state: 'pending' }, void_report: null });
      expect(json(await api.get(api.a.keys.owner, '/api/v1/status')).voids).toEqual({ pending: 3, refused: 0 });
    });
  });
}
