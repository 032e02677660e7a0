// The day's verification counts (5 per invoice per day) are kept in memory and written in a batch.
// A batch that cannot be written while the database is away is written by the next flush, so a
// count is never lost to an outage; and what another instance wrote comes back with the write.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { VerificationCounter } from '../../src/app/verification-counter.js';
import { Fault, faults } from '../../src/domain/faults.js';
import type { Store } from '../../src/app/ports.js';
import { until } from '../support/until.js';

const DAY = '2026-03-10';
const NEVER = 3_600_000; // flushes are driven by the test

/** The real store, whose next write fails as it does while the database is away. */
function withOutage(store: Store): { store: Store; failNextWrite(): void } {
  let fail = false;
  const write: Store['write'] = (work) => {
    if (!fail) return store.write(work);
    fail = false;
    return Promise.reject(new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }));
  };
  return { store: { ...store, dialect: store.dialect, read: store.read, checkWritable: () => store.checkWritable(), close: () => store.close(), write }, failNextWrite: () => void (fail = true) };
}

for (const kind of storesUnderTest) {
  describe(`verification counter on ${kind.name}`, () => {
    let opened: OpenedStore;
    beforeEach(async () => {
      opened = await kind.open();
    });
    afterEach(() => opened.cleanup());

    it('writes the counts of a failed flush at the next one, and counts on from the total', async () => {
      const flaky = withOutage(opened.store);
      const counter = new VerificationCounter({ store: flaky.store }, NEVER);
      for (let i = 1; i <= 3; i++) expect(await counter.count('m_a', 'N1', DAY, 0)).toBe(i);
      expect(await counter.count('m_a', 'N2', DAY, 0)).toBe(1);

      flaky.failNextWrite();
      await counter.flush();
      expect(await opened.store.read.verification.current('m_a', 'N1', DAY)).toBe(0);

      await counter.flush();
      expect(await opened.store.read.verification.current('m_a', 'N1', DAY)).toBe(3);
      expect(await opened.store.read.verification.current('m_a', 'N2', DAY)).toBe(1);
      expect(await counter.count('m_a', 'N1', DAY)).toBe(4);
    });

    it("brings back what another instance counted, and writes only what was counted since", async () => {
      const here = new VerificationCounter({ store: opened.store }, NEVER);
      const there = new VerificationCounter({ store: opened.store }, NEVER);
      await here.count('m_a', 'N1', DAY, 0);
      await there.count('m_a', 'N1', DAY, 0);
      await there.count('m_a', 'N1', DAY);
      await there.flush();
      await here.flush(); // adds its 1 to the 2 written by the other
      expect(await opened.store.read.verification.current('m_a', 'N1', DAY)).toBe(3);
      expect(await here.count('m_a', 'N1', DAY)).toBe(4);
      await here.flush();
      await here.flush(); // nothing new: writes nothing more
      expect(await opened.store.read.verification.current('m_a', 'N1', DAY)).toBe(4);
    });

    it('counts on from what the database holds now, whatever it held when this process first counted', async () => {
      // Two server processes, each answering some of one invoice's verifications.
      const one = new VerificationCounter({ store: opened.store }, NEVER);
      const two = new VerificationCounter({ store: opened.store }, NEVER);
      const stored = () => opened.store.read.verification.current('m_a', 'N1', DAY);
      expect(await two.count('m_a', 'N1', DAY, await stored())).toBe(1);
      await two.flush();
      for (let i = 2; i <= 4; i++) {
        expect(await one.count('m_a', 'N1', DAY, await stored())).toBe(i);
        await one.flush();
      }
      expect(await two.count('m_a', 'N1', DAY, await stored())).toBe(5);
      await two.flush();
      expect(await one.count('m_a', 'N1', DAY, await stored())).toBe(6);
    });

    it('does not count twice what a flush under way has written', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      // The flush's transaction commits, and its answer is held back.
      const slow: Store = { ...opened.store, write: async (work) => { const written = await opened.store.write(work); await released; return written; } };
      const counter = new VerificationCounter({ store: slow }, NEVER);
      const stored = () => opened.store.read.verification.current('m_a', 'N1', DAY);
      await counter.count('m_a', 'N1', DAY, 0);
      await counter.count('m_a', 'N1', DAY, 0);
      const flushing = counter.flush();
      await until('the flush committed', async () => ((await stored()) === 2 ? true : undefined));
      expect(await counter.count('m_a', 'N1', DAY, await stored())).toBe(3); // the 2 it sees are its own
      release();
      await flushing;
      expect(await counter.count('m_a', 'N1', DAY, await stored())).toBe(4);
    });
  });
}
