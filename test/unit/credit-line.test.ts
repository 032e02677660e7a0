// The month's credit line (授信额度, R9) from two sources: the tax service's grant and the
// operator's own limit. The lower binds, a missing one never binds, and the refusal names which.
import { describe, expect, it } from 'vitest';
import { effectiveCreditLine, refuseCredit, type CreditLimits } from '../../src/domain/credit-line.js';

const limits = (granted: bigint | null, operator: bigint | null): CreditLimits => ({ grantedCreditFen: granted, operatorCreditFen: operator });

describe('the credit line that applies: the lower of the grant and the operator\'s limit', () => {
  it.each([
    ['neither is set', null, null, null],
    ['only the grant', 200_000n, null, { limitFen: 200_000n, binding: 'tax_service' }],
    ['only the operator\'s limit', null, 100_000n, { limitFen: 100_000n, binding: 'operator' }],
    ['the operator\'s is lower', 200_000n, 100_000n, { limitFen: 100_000n, binding: 'operator' }],
    ['the grant is lower', 100_000n, 200_000n, { limitFen: 100_000n, binding: 'tax_service' }],
    ['the grant is lower by one fen', 199_999n, 200_000n, { limitFen: 199_999n, binding: 'tax_service' }],
    ['they are equal', 150_000n, 150_000n, { limitFen: 150_000n, binding: 'both' }],
    ['a grant of zero', 0n, 100_000n, { limitFen: 0n, binding: 'tax_service' }],
    ['an operator\'s limit of zero', 100_000n, 0n, { limitFen: 0n, binding: 'operator' }],
  ] as const)('%s', (_case, granted, operator, expected) => {
    expect(effectiveCreditLine(limits(granted, operator))).toEqual(expected);
  });
});

describe('refusing past the credit line (3004)', () => {
  const en = (granted: bigint | null, operator: bigint | null, used: bigint, amount: bigint) => {
    const fault = refuseCredit(limits(granted, operator), used, amount);
    return fault?.messageIn('en');
  };
  const zh = (granted: bigint | null, operator: bigint | null, used: bigint, amount: bigint) => {
    const fault = refuseCredit(limits(granted, operator), used, amount);
    return fault?.messageIn('zh');
  };

  it('never refuses without a credit line', () => {
    expect(refuseCredit(limits(null, null), 10n ** 15n, 10n ** 15n)).toBeUndefined();
  });
  it('accepts the invoice that fills the line exactly and refuses one fen more', () => {
    expect(refuseCredit(limits(100_000n, null), 60_000n, 40_000n)).toBeUndefined();
    expect(refuseCredit(limits(100_000n, null), 60_000n, 40_001n)?.spec.code).toBe(3004);
  });
  it('counts against the lower limit, whichever source it comes from', () => {
    expect(refuseCredit(limits(100_000n, 50_000n), 0n, 50_001n)?.spec.code).toBe(3004);
    expect(refuseCredit(limits(50_000n, 100_000n), 0n, 50_001n)?.spec.code).toBe(3004);
    expect(refuseCredit(limits(100_000n, 50_000n), 0n, 50_000n)).toBeUndefined();
  });
  it('says the tax service\'s grant binds, and the operator\'s limit beside it', () => {
    expect(en(100_000n, null, 60_000n, 50_000n)).toBe("Monthly credit line exceeded: the tax service's grant of 1000.00 yuan binds (operator's limit: none); 400.00 yuan left, this invoice 500.00 yuan (before tax)");
    expect(zh(100_000n, 300_000n, 60_000n, 50_000n)).toBe('超出本月授信额度：生效的是税务机关核定的授信额度 1000.00 元（平台运营方限额：3000.00 元）；剩余 400.00 元，本张发票 500.00 元（不含税）');
  });
  it('says the operator\'s limit binds, and the grant beside it', () => {
    expect(en(300_000n, 100_000n, 0n, 100_001n)).toBe("Monthly credit line exceeded: the operator's limit of 1000.00 yuan binds (tax service's grant: 3000.00 yuan); 1000.00 yuan left, this invoice 1000.01 yuan (before tax)");
    expect(zh(null, 100_000n, 0n, 100_001n)).toContain('生效的是平台运营方设定的限额 1000.00 元（税务机关授信额度：未核定）');
  });
  it('says both bind when they are equal', () => {
    expect(en(100_000n, 100_000n, 0n, 100_001n)).toContain("the tax service's grant and the operator's limit are both 1000.00 yuan");
    expect(zh(100_000n, 100_000n, 0n, 100_001n)).toContain('税务机关授信额度与平台运营方限额同为 1000.00 元');
  });
  it('shows nothing left, never a negative amount, when the month already used more (a line lowered mid-month)', () => {
    expect(refuseCredit(limits(50_000n, null), 80_000n, 1n)?.params.remaining).toBe('0.00');
  });
});
