// Background work is shared through leases on outbox rows: concurrent claimers never get the same
// job while its lease lives, a job whose claimer died is claimed again once its lease runs out, and
// a claimer that lost its lease cannot complete the job a second time. A process restarted on the
// same machine ends at once the leases of one that is gone (killed), and only those.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';
import type { OutboxJob } from '../../src/app/ports.js';
import { endLeasesOfGoneProcesses, leaseOwner, PROCESS_TOKEN } from '../../src/app/process-identity.js';
import { goneOwner } from '../support/processes.js';

const body = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `#${i}`,
  buyer: { name: '张三', tax_id: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*餐饮服务*餐费', tax_code: '3070401000000000000', spec: '', unit: '次', quantity: '1', unit_price: '10.00', tax_rate: '0.06' }],
});

for (const kind of storesUnderTest) {
  describe(`outbox leases on ${kind.name}`, () => {
    let opened: OpenedStore;
    let at = Date.parse('2026-11-22T02:00:00Z');
    const clock = { now: () => new Date(at) };
    const time = (offsetMs = 0) => shanghaiTimestamp(new Date(at + offsetMs));
    const claim = (owner: string, limit = 7) =>
      opened.store.write((tx) => tx.outbox.claim({ topic: 'invoice.upload', owner, now: time(), leaseUntil: time(30_000), limit }));

    beforeEach(async () => {
      at = Date.parse('2026-11-22T02:00:00Z');
      opened = await kind.open();
      const ports = { store: opened.store, clock };
      const merchant = await addMerchant(ports, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' });
      await grantTestNumbers(ports, merchant.id);
      for (let i = 0; i < 60; i++) await issueInvoice(ports, { merchantId: merchant.id, role: 'clerk', actor: 'pos' }, body(i));
    });
    afterEach(() => opened.cleanup());

    it('hands each job to exactly one of several concurrent claimers', async () => {
      const done = new Map<number, string>();
      const worker = async (owner: string) => {
        for (;;) {
          const jobs = await claim(owner);
          if (jobs.length === 0) return;
          for (const job of jobs) {
            expect(done.has(job.id), `job ${job.id} claimed twice`).toBe(false);
            done.set(job.id, owner);
            expect(await opened.store.write((tx) => tx.outbox.complete(job.id, owner, time()))).toBe(true);
          }
        }
      };
      await Promise.all(['instance-a', 'instance-b', 'instance-c'].map(worker));
      expect(done.size).toBe(60);
      expect(await claim('late')).toEqual([]);
    });

    it('gives the job of a claimer that died to another once the lease has run out', async () => {
      const taken: OutboxJob[] = await claim('dies', 5);
      expect(taken.map((j) => j.attempts)).toEqual([1, 1, 1, 1, 1]);
      const others = await claim('survivor', 100);
      expect(others.map((j) => j.id)).not.toContain(taken[0]!.id);
      expect(others).toHaveLength(55);

      at += 31_000; // the dead claimer's lease has run out
      const retaken = await claim('survivor', 100);
      expect(retaken.map((j) => j.id)).toEqual(expect.arrayContaining(taken.map((j) => j.id)));
      expect(retaken.find((j) => j.id === taken[0]!.id)?.attempts).toBe(2);
      // The claimer that lost its lease cannot complete the job as well.
      expect(await opened.store.write((tx) => tx.outbox.complete(taken[0]!.id, 'dies', time()))).toBe(false);
      expect(await opened.store.write((tx) => tx.outbox.complete(taken[0]!.id, 'survivor', time()))).toBe(true);
    });

    it('holds back a released job until the time it was given back for', async () => {
      const [job] = await claim('worker', 1);
      expect(await opened.store.write((tx) => tx.outbox.release(job!.id, 'worker', time(60_000)))).toBe(true);
      at += 31_000;
      expect((await claim('worker', 100)).map((j) => j.id)).not.toContain(job!.id);
      at += 30_000;
      expect((await claim('worker', 100)).map((j) => j.id)).toContain(job!.id);
    });

    it('ends at once the leases of a process of this machine that is gone, and no others', async () => {
      const gone = goneOwner();
      const elsewhere = `another-host:4242:${PROCESS_TOKEN}`; // cannot be checked from here: runs its term
      const alive = leaseOwner();
      const lease = (owner: string, leaseUntil = time(120_000), limit = 5) =>
        opened.store.write((tx) => tx.outbox.claim({ topic: 'invoice.upload', owner, now: time(), leaseUntil, limit }));
      const [byGone, byGoneLane, byElsewhere, byAlive] = [await lease(gone), await lease(`${gone}/2`), await lease(elsewhere), await lease(alive)];
      const named = (name: string, owner: string) => opened.store.write((tx) => tx.jobLeases.acquire(name, owner, time(), time(120_000)));
      expect(await named('upkeep:gone', gone)).not.toBe(false);
      expect(await named('upkeep:alive', alive)).not.toBe(false);

      const ended = await endLeasesOfGoneProcesses({ store: opened.store }, time());
      expect(ended.owners.sort()).toEqual([gone, `${gone}/2`].sort());
      expect(ended.leases).toBe(11); // 5 + 5 jobs and one named lease

      at += 1; // the next moment: the ended leases can be taken, the others still cannot
      const retakenJobs = await lease('successor', time(60_000), 100);
      const retaken = retakenJobs.map((j) => j.id);
      expect(retaken).toEqual(expect.arrayContaining([...byGone, ...byGoneLane].map((j) => j.id)));
      for (const job of [...byElsewhere, ...byAlive]) expect(retaken).not.toContain(job.id);
      expect(retaken).toHaveLength(10 + 40); // and the 40 jobs nobody had claimed
      expect(await named('upkeep:gone', 'successor')).not.toBe(false);
      expect(await named('upkeep:alive', 'successor')).toBe(false);
      // Attempts go on counting: the upload worker asks the tax service about a job the dead process may have sent.
      for (const job of [...byGone, ...byGoneLane]) expect(retakenJobs.find((j) => j.id === job.id)?.attempts).toBe(2);
    });
  });
}
