// 离线开票 limits: exactly where issuing stops and where the 80 % warning starts.
import { describe, expect, it } from 'vitest';
import { assess, EMPTY_BACKLOG, refuseIssue, type Backlog, type ContingencyLimits } from '../../src/domain/contingency.js';
import { Fault } from '../../src/domain/faults.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';

const NOW = new Date('2026-11-22T02:00:00Z');
const hoursAgo = (h: number, ms = 0) => shanghaiTimestamp(new Date(NOW.getTime() - h * 3_600_000 - ms));
const limits: ContingencyLimits = { kind: 'normal', maxOfflineHours: 72, maxOfflineAmountFen: 100_000_000n }; // ¥1,000,000
const backlog = (preTaxFen: bigint, oldestAt: string | null = hoursAgo(1), count = 1): Backlog => ({ count, preTaxFen, oldestAt });
const code = (f: Fault | undefined) => f?.spec.code;

describe('the offline amount limit (离线开票限额)', () => {
  it('accepts the invoice that brings the backlog exactly to the limit', () => {
    expect(refuseIssue(limits, backlog(99_000_000n), 1_000_000n, NOW)).toBeUndefined();
  });
  it('refuses the invoice one fen over it, with 4022 naming what is pending and the limit', () => {
    const refusal = refuseIssue(limits, backlog(99_000_000n), 1_000_001n, NOW);
    expect(code(refusal)).toBe(4022);
    expect(refusal!.params).toMatchObject({ pending: '990000.00', amount: '10000.01', max: '1000000.00' });
    expect(refusal!.retryAfterSeconds).toBeGreaterThan(0);
  });
  it('still accepts a smaller invoice that fits the remaining amount', () => {
    expect(refuseIssue(limits, backlog(99_999_999n), 1n, NOW)).toBeUndefined();
    expect(code(refuseIssue(limits, backlog(100_000_000n), 1n, NOW))).toBe(4022);
  });
  it('refuses a single invoice larger than the whole limit even with an empty backlog', () => {
    expect(code(refuseIssue(limits, EMPTY_BACKLOG, 100_000_001n, NOW))).toBe(4022);
    expect(refuseIssue(limits, EMPTY_BACKLOG, 100_000_000n, NOW)).toBeUndefined();
  });
});

describe('the offline time limit (离线开票时限)', () => {
  it('accepts while the oldest un-uploaded invoice is exactly 72 h old', () => {
    expect(refuseIssue(limits, backlog(1n, hoursAgo(72)), 1n, NOW)).toBeUndefined();
  });
  it('refuses one millisecond later with 4021', () => {
    const refusal = refuseIssue(limits, backlog(1n, hoursAgo(72, 1)), 1n, NOW);
    expect(code(refusal)).toBe(4021);
    expect(refusal!.params).toMatchObject({ max: '72', kind: { zh: '普通发票', en: 'normal' } });
  });
  it('never tells a refused merchant an age equal to the limit: the age is rounded up', () => {
    expect(refuseIssue(limits, backlog(1n, hoursAgo(72, 1)), 1n, NOW)!.params).toMatchObject({ hours: '72.1', max: '72' });
    expect(refuseIssue(limits, backlog(1n, hoursAgo(72.5)), 1n, NOW)!.params).toMatchObject({ hours: '72.5' });
  });
  it('measures from the oldest invoice, so an empty backlog never blocks', () => {
    expect(refuseIssue(limits, EMPTY_BACKLOG, 1n, NOW)).toBeUndefined();
  });
  it('checks time before amount: a stale backlog is refused whatever the amount', () => {
    expect(code(refuseIssue(limits, backlog(100_000_000n, hoursAgo(100)), 1n, NOW))).toBe(4021);
  });
});

describe('no terms, no limits', () => {
  it('accepts anything when the tax service has set no limits for the kind', () => {
    expect(refuseIssue(undefined, backlog(10n ** 15n, hoursAgo(10_000)), 10n ** 12n, NOW)).toBeUndefined();
  });
});

describe('assessment and 80 % warnings', () => {
  it('warns at exactly 80 % of the amount, not one fen below', () => {
    expect(assess(limits, backlog(80_000_000n), NOW).amount.warning).toBe(true);
    expect(assess(limits, backlog(79_999_999n), NOW).amount.warning).toBe(false);
  });
  it('warns at 80 % of the hours (57.6 h of 72)', () => {
    expect(assess(limits, backlog(1n, hoursAgo(57.6)), NOW).hours.warning).toBe(true);
    expect(assess(limits, backlog(1n, hoursAgo(57.5)), NOW).hours.warning).toBe(false);
  });
  it('reports a kind blocked once nothing more fits or the oldest is past the hours', () => {
    expect(assess(limits, backlog(100_000_000n), NOW)).toMatchObject({ blocked: true, amount: { reached: true, ratio: 1 } });
    expect(assess(limits, backlog(1n, hoursAgo(72, 1)), NOW)).toMatchObject({ blocked: true, hours: { reached: true } });
    expect(assess(limits, backlog(1n, hoursAgo(72)), NOW).blocked).toBe(false);
  });
});
