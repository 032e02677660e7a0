// Signing keys and verification counters, on both dialects.
import { type Kysely, sql } from 'kysely';
import type { DocumentRepositories, SigningKeyRecord } from '../app/document-ports.js';
import type { Invoice } from '../domain/invoice.js';
import { arg, prepare } from './prepared.js';
import type { Database, InvoiceTable } from './schema.js';

type Db = Kysely<Database>;

// Public verification's one statement, prepared once per dialect (it runs for every lookup).
const byNumber = prepare<{ number: string; day: string }, InvoiceTable & { verified_on_day: number | string | null }>((db) =>
  db
    .selectFrom('invoices')
    .leftJoin('verification_counts as v', (join) => join.onRef('v.merchant_id', '=', 'invoices.merchant_id').onRef('v.number', '=', 'invoices.number').on('v.day', '=', arg<string>('day')))
    .selectAll('invoices')
    .select('v.count as verified_on_day')
    .where('invoices.number', '=', arg<string>('number'))
    .limit(20),
);

// The counter's statements run for every invoice verified (in the flush every 250 ms): prepared too.
// One statement adds to the day's count (or starts it) and reads the result back.
const addCount = prepare<{ merchantId: string; number: string; day: string; count: number }, { count: number | string }>((db) =>
  db
    .insertInto('verification_counts')
    .values({ merchant_id: arg('merchantId'), number: arg('number'), day: arg('day'), count: arg('count') })
    .onConflict((oc) => oc.columns(['merchant_id', 'number', 'day']).doUpdateSet((eb) => ({ count: sql`verification_counts.count + ${eb.ref('excluded.count')}` })))
    .returning('count'),
);
const currentCount = prepare<{ merchantId: string; number: string; day: string }, { count: number | string }>((db) =>
  db.selectFrom('verification_counts').select('count').where('merchant_id', '=', arg('merchantId')).where('number', '=', arg('number')).where('day', '=', arg('day')),
);

export function documentRepositories(db: Db, dialect: 'sqlite' | 'postgres', toInvoice: (row: InvoiceTable) => Invoice): DocumentRepositories {
  return {
    signingKeys: {
      async register(key) {
        await db
          .insertInto('signing_keys')
          .values({ id: key.id, algorithm: key.algorithm, public_key: key.publicKeyPem, created_at: key.createdAt, retired_at: key.retiredAt })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      },
      async retireOthers(currentId, at) {
        await db.updateTable('signing_keys').set({ retired_at: at }).where('id', '!=', currentId).where('retired_at', 'is', null).execute();
        await db.updateTable('signing_keys').set({ retired_at: null }).where('id', '=', currentId).execute();
      },
      async list() {
        const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('id').execute();
        return rows.map((r): SigningKeyRecord => ({ id: r.id, algorithm: 'Ed25519', publicKeyPem: r.public_key, createdAt: r.created_at, retiredAt: r.retired_at }));
      },
    },
    verification: {
      async invoicesByNumber(number, day) {
        const { rows } = await byNumber.execute(db, dialect, { number, day });
        return rows.map((row) => ({ invoice: toInvoice(row), verifiedOnDay: Number(row.verified_on_day ?? 0) }));
      },
      async add(merchantId, number, day, count) {
        const [row] = (await addCount.execute(db, dialect, { merchantId, number, day, count })).rows;
        return Number(row!.count);
      },
      async current(merchantId, number, day) {
        const [row] = (await currentCount.execute(db, dialect, { merchantId, number, day })).rows;
        return row ? Number(row.count) : 0;
      },
      async purgeBefore(day) {
        const result = await db.deleteFrom('verification_counts').where('day', '<', day).executeTakeFirst();
        return Number(result.numDeletedRows);
      },
    },
  };
}
