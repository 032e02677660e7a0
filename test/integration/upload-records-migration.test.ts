// Migration 012 stores each upload job's record in the JSON the upload request carries, with its
// kind, pre-tax amount and digest beside it. Records stored before it (UploadRecord's own JSON) are
// rewritten and upload exactly as they would have; undoing it gives the old JSON back.
import { describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';
import { createOutboxRunner } from '../../src/app/outbox-runner.js';
import { uploadRecord } from '../../src/app/upload-record.js';
import { uploadHandler } from '../../src/app/upload-worker.js';
import { migrator } from '../../src/store/migrate.js';
import { uploadRecordJson } from '../../src/upstream/protocol.js';
import { body as json, oneLine, sampleInvoice } from '../support/http.js';
import { storesUnderTest } from '../support/stores.js';
import { upstreamFixture } from '../support/upstream-fixture.js';

interface RecordRow {
  record: string;
  kind?: string;
  pre_tax_fen?: number | string;
  digest?: string;
}

const storedRecords = async (db: Kysely<any>) =>
  (await sql<RecordRow>`select * from upload_records order by job_id`.execute(db)).rows;

for (const kind of storesUnderTest) {
  describe(`migration 012 (upload records as sent) on ${kind.name}`, () => {
    const t = upstreamFixture(kind);

    it('rewrites the records stored before it, which then upload once with their digests and empty the backlog', async () => {
      const bodies = [sampleInvoice(), sampleInvoice({ lines: [oneLine('3', '0.01', '0.06')] })];
      const numbers: string[] = [];
      for (const body of bodies) numbers.push(json(await t.api.issue(t.api.a.keys.clerk, body)).number);
      const invoices = await Promise.all(numbers.map(async (n) => (await t.opened.store.read.invoices.get(t.api.a.id, n))!));

      const { db, schema } = t.opened.connect();
      try {
        const steps = migrator(db, schema);
        expect((await steps.migrateTo('011-drop-outbox-pending')).error).toBeUndefined();
        expect((await storedRecords(db)).map((r) => [JSON.parse(r.record), r.kind])).toEqual(invoices.map((i) => [uploadRecord(i), undefined]));

        expect((await steps.migrateToLatest()).error).toBeUndefined();
        expect((await storedRecords(db)).map((r) => ({ ...r, record: JSON.parse(r.record), pre_tax_fen: String(r.pre_tax_fen) }))).toEqual(invoices.map((i) => expect.objectContaining({
          record: JSON.parse(uploadRecordJson(uploadRecord(i))), kind: 'normal', pre_tax_fen: i.totalAmount.toString(), digest: i.digest,
        })));
      } finally {
        await db.destroy();
      }

      const store = await t.opened.reopen(); // prepared statements made before the schema changed are not reused
      try {
        const ports = { store, clock: t.api.clock };
        const runner = t.keep(createOutboxRunner(ports, uploadHandler(ports, t.taxService), { owner: 'after-012', batchSize: 1000, leaseMs: 30_000 }));
        await t.drain(runner);
        const counters = await t.sandbox.counters(t.seller());
        expect(invoices.map((i) => ({ number: i.number, ...counters.get(i.number) }))).toEqual(invoices.map((i) => expect.objectContaining({
          number: i.number, accepted: 1, duplicates: 0, conflicts: 0, digest: i.digest,
        })));
        expect(json(await t.api.get(t.api.a.keys.owner, '/api/v1/status')).backlog).toMatchObject({ count: 0, pre_tax_total: '0.00' });
      } finally {
        await store.close();
      }
    });
  });
}
