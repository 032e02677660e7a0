// Point-in-time recovery on PostgreSQL, done exactly as docs/deploy.md tells an operator: WAL
// archiving on, a compressed base backup, then a mistake (every invoice deleted by hand); the base
// backup restored into an empty directory with restore_command and recovery_target_time set to a
// moment between two batches of invoices. The recovered database holds the first batch and nothing
// of the second, numbers run without a gap, and every hash chain verifies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startArchivingCluster, type PgArchiving } from '../support/pg-cluster.js';
import { sleep } from '../support/server-process.js';
import { grantTestNumbers } from '../support/numbers.js';
import { openStore } from '../../src/store/database.js';
import { addMerchant } from '../../src/app/merchants.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { systemClock } from '../../src/domain/time.js';
import type { Ports } from '../../src/app/ports.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';

const BATCH = 25;

const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `#${i}`,
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + i}.00`, tax_rate: '0.06' }],
});

describe.skipIf(!postgresInstalled)('PostgreSQL point-in-time recovery (docs/deploy.md)', () => {
  let cluster: PgArchiving;

  beforeAll(async () => {
    cluster = await startArchivingCluster();
  }, 60_000);
  afterAll(() => cluster?.remove());

  it('restores the database as it was at a chosen moment, chains intact', async () => {
    const store = await openStore({ dataDir: '', databaseUrl: cluster.url });
    const ports: Ports = { store, clock: systemClock };
    let merchantId: string;
    let firstBatch: string[];
    let target: string;
    let baseBackup: string;
    try {
      const merchant = await addMerchant(ports, { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
      merchantId = merchant.id;
      await grantTestNumbers(ports, merchantId);
      const caller = { merchantId, role: 'clerk' as const, actor: 'clerk1' };
      baseBackup = await cluster.baseBackup();

      firstBatch = [];
      for (let i = 0; i < BATCH; i++) firstBatch.push((await issueInvoice(ports, caller, request(i))).invoice.number);
      // The recovery target lies strictly between the two batches' commits.
      await sleep(50);
      target = (await cluster.node.query<{ t: string }>(`select to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US TZH') as t`))[0]!.t;
      await sleep(50);
      for (let i = BATCH; i < 2 * BATCH; i++) await issueInvoice(ports, caller, request(i));

      // The mistake an operator recovers from, then everything up to it is archived.
      await cluster.node.query('delete from invoice_states');
      await cluster.node.query('delete from invoice_records');
      await cluster.archiveCurrentWal();
    } finally {
      await store.close();
    }

    const recovered = await cluster.recoverTo(baseBackup, target);
    const restored = await openStore({ dataDir: '', databaseUrl: recovered.url }, { migrate: false });
    try {
      const rows = await recovered.query<{ number: string }>('select number from invoices order by chain_index');
      expect(rows.map((r) => r.number)).toEqual(firstBatch);
      const reports = await verifyChains({ store: restored, clock: systemClock }, [merchantId]);
      expect(reports).toEqual([expect.objectContaining({ merchantId, invoices: BATCH, breaks: [] })]);
      // The recovered primary takes new invoices, continuing the series where the first batch ended.
      const caller = { merchantId, role: 'clerk' as const, actor: 'clerk1' };
      const next = await issueInvoice({ store: restored, clock: systemClock }, caller, request(99));
      expect(BigInt(next.invoice.number)).toBe(BigInt(firstBatch.at(-1)!) + 1n);
    } finally {
      await restored.close();
    }
  }, 120_000);
});
