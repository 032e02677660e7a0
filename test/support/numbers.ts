// Invoice numbers for merchants made by tests: an explicitly granted block per year (the numbers a
// tax office would assign), stored without an audit entry so tests that count audit entries see
// only what they did. Tests of the tax service itself fetch blocks from a real sandbox instead.
import { storeBlock } from '../../src/app/number-blocks.js';
import type { Ports } from '../../src/app/ports.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';

/** The years a test clock may reach: the test calendar's (2026) and the machine's, each ±1. */
export function fixtureYears(): number[] {
  const now = new Date().getUTCFullYear();
  return [...new Set([2025, 2026, 2027, now - 1, now, now + 1])].sort();
}

export async function grantTestNumbers(ports: Pick<Ports, 'store' | 'clock'>, merchantId: string, last = 9_999_999, years = fixtureYears()): Promise<void> {
  const at = shanghaiTimestamp(ports.clock.now());
  await ports.store.write(async (tx) => {
    for (const year of years) await storeBlock(tx, merchantId, { blockId: `test-${year}`, year, first: 1, last }, 'granted', at);
  });
}
