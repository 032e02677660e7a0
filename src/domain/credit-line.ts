// The month's credit line (授信额度, R9): pre-tax fen a merchant may issue per calendar month
// (Asia/Shanghai). Two sources may each set one, stored apart so neither overwrites the other:
// the tax service's grant (from its terms, refreshed by the upkeep; null = it grants no line) and
// the operator's own limit (`fapiao merchant add|limits --monthly-credit`; null = none). The lower
// of the two binds; with neither there is no credit line.
import { bilingual, Fault, faults, type Bilingual } from './faults.js';
import { formatYuan, type Fen } from './money.js';

export interface CreditLimits {
  /** The tax service's grant (授信额度 from its terms); null = none. */
  grantedCreditFen: Fen | null;
  /** The operator's own monthly limit; null = none. */
  operatorCreditFen: Fen | null;
}

/** Which limit binds: the lower one, or both when they are equal. */
export const creditBindings = ['tax_service', 'operator', 'both'] as const;
export type CreditBinding = (typeof creditBindings)[number];

export interface CreditLine {
  limitFen: Fen;
  binding: CreditBinding;
}

/** The credit line that applies: the lower of the grant and the operator's limit; null when neither is set. */
export function effectiveCreditLine({ grantedCreditFen: granted, operatorCreditFen: operator }: CreditLimits): CreditLine | null {
  if (granted === null && operator === null) return null;
  if (operator === null || (granted !== null && granted < operator)) return { limitFen: granted!, binding: 'tax_service' };
  if (granted === null || operator < granted) return { limitFen: operator, binding: 'operator' };
  return { limitFen: granted, binding: 'both' };
}

/**
 * Why an invoice of `preTaxFen` may not be issued when `usedFen` of the month is already issued
 * (3004, naming the binding limit and the other one); undefined when it fits. An invoice that fills
 * the line exactly is accepted.
 */
export function refuseCredit(limits: CreditLimits, usedFen: Fen, preTaxFen: Fen): Fault | undefined {
  const line = effectiveCreditLine(limits);
  if (!line) return undefined;
  const remaining = line.limitFen - usedFen;
  if (preTaxFen <= remaining) return undefined;
  return new Fault(faults.CREDIT_LINE_EXCEEDED, {
    binding: bindingText(limits, line),
    remaining: formatYuan(remaining > 0n ? remaining : 0n),
    amount: formatYuan(preTaxFen),
  });
}

/** The binding limit in words, both languages (the 3004 message's {binding}). */
function bindingText(limits: CreditLimits, line: CreditLine): Bilingual {
  const yuan = (value: Fen | null, zhNone: string, enNone: string) => (value === null ? [zhNone, enNone] : [`${formatYuan(value)} 元`, `${formatYuan(value)} yuan`]);
  const [grantedZh, grantedEn] = yuan(limits.grantedCreditFen, '未核定', 'none');
  const [operatorZh, operatorEn] = yuan(limits.operatorCreditFen, '未设置', 'none');
  const limit = formatYuan(line.limitFen);
  switch (line.binding) {
    case 'tax_service':
      return bilingual(`生效的是税务机关核定的授信额度 ${limit} 元（平台运营方限额：${operatorZh}）`, `the tax service's grant of ${limit} yuan binds (operator's limit: ${operatorEn})`);
    case 'operator':
      return bilingual(`生效的是平台运营方设定的限额 ${limit} 元（税务机关授信额度：${grantedZh}）`, `the operator's limit of ${limit} yuan binds (tax service's grant: ${grantedEn})`);
    case 'both':
      return bilingual(`税务机关授信额度与平台运营方限额同为 ${limit} 元`, `the tax service's grant and the operator's limit are both ${limit} yuan`);
  }
}
