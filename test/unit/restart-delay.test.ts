// A worker that had been serving and died is replaced after a delay that doubles with each death
// in a row, up to a cap, so a process that crashes soon after every start does not take the
// machine's CPU starting again and again; the count starts over once a worker has run healthy.
import { describe, expect, it } from 'vitest';
import { restartDelayMs } from '../../src/ops/supervisor.js';

describe('the delay before a dead worker is replaced', () => {
  it.each([
    [0, 500],
    [1, 1_000],
    [2, 2_000],
    [5, 16_000],
    [6, 30_000],
    [40, 30_000],
  ])('after %i replacements in a row: %i ms', (restarts, delayMs) => expect(restartDelayMs(restarts)).toBe(delayMs));
});
