// The print job's life (R21) as rules: when it retries, when it moves to the backup, when it
// stops, and that no transition can send a job again once a printer may have printed it.
import { describe, expect, it } from 'vitest';
import {
  attemptFailed, cancel, isStuck, newPrintJob, printed, PrintJobTransitionError, retryDelay, startSending, submitted, unconfirmed,
  type PrintPolicy,
} from '../../src/domain/print-job.js';

const policy: PrintPolicy = { baseDelayMs: 1_000, maxDelayMs: 5_000, failoverAfter: 3, maxAttempts: 5, stuckAfterMs: 60_000, pollMs: 500 };
const t0 = new Date('2026-03-10T02:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const job = () => newPrintJob({ id: 'pj_1', merchantId: 'm', invoiceNumber: '26310000000000000001', printerId: 'front', requestedBy: 'clerk', at: '2026-03-10T10:00:00.000+08:00' });

describe('print job', () => {
  it('goes queued → sending → submitted → printed', () => {
    const sending = startSending(job(), 'x');
    expect(sending).toMatchObject({ state: 'sending', attempts: 1, totalAttempts: 1 });
    const handed = submitted(sending, 'Q-7', '2026-03-10T10:00:01.000+08:00');
    expect(handed).toMatchObject({ state: 'submitted', externalId: 'Q-7', submittedAt: '2026-03-10T10:00:01.000+08:00' });
    expect(printed(handed, 'y')).toMatchObject({ state: 'printed', printedAt: 'y' });
  });

  it('retries with doubling pauses, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(n, policy))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    const once = attemptFailed(job(), 'stopped', t0, policy, null);
    expect(once).toMatchObject({ state: 'queued', attempts: 1, lastError: 'stopped', nextAttemptAt: '2026-03-10T10:00:01.000+08:00' });
    const twice = attemptFailed(startSending(once, 'x'), 'stopped', at(1_000), policy, null);
    expect(twice).toMatchObject({ attempts: 2, nextAttemptAt: '2026-03-10T10:00:03.000+08:00' });
  });

  it('moves to the backup after failoverAfter failures on one printer, and fails for good after maxAttempts in all', () => {
    let j = job();
    for (let i = 0; i < 2; i++) j = attemptFailed(j, 'stopped', t0, policy, 'back');
    expect(j).toMatchObject({ printerId: 'front', attempts: 2 });
    j = attemptFailed(j, 'stopped', t0, policy, 'back');
    expect(j).toMatchObject({ state: 'queued', printerId: 'back', originalPrinterId: 'front', attempts: 0, totalAttempts: 3, movedAt: '2026-03-10T10:00:00.000+08:00', nextAttemptAt: '2026-03-10T10:00:00.000+08:00' });
    j = attemptFailed(j, 'also stopped', t0, policy, null);
    j = attemptFailed(j, 'also stopped', t0, policy, null);
    expect(j).toMatchObject({ state: 'failed', totalAttempts: 5, lastError: 'also stopped' });
  });

  it('never moves a job that may have printed: only a confirmed failure or an explicit give-up ends a submission', () => {
    const handed = submitted(startSending(job(), 'x'), 'Q-7', '2026-03-10T10:00:00.000+08:00');
    expect(() => startSending(handed, 'x')).toThrow(PrintJobTransitionError);
    expect(() => cancel(handed, 'x')).toThrow(PrintJobTransitionError);
    expect(unconfirmed(handed, 'lost', 'x')).toMatchObject({ state: 'failed', externalId: 'Q-7' });
    const done = printed(handed, 'y');
    expect(() => attemptFailed(done, 'late', t0, policy, 'back')).toThrow(PrintJobTransitionError);
    expect(() => startSending(done, 'z')).toThrow(PrintJobTransitionError);
  });

  it('is stuck only when submitted for longer than stuckAfterMs', () => {
    const handed = submitted(startSending(job(), 'x'), 'Q-7', '2026-03-10T10:00:00.000+08:00');
    expect(isStuck(handed, at(59_999), policy)).toBe(false);
    expect(isStuck(handed, at(60_000), policy)).toBe(true);
    expect(isStuck(job(), at(600_000), policy)).toBe(false);
  });
});
