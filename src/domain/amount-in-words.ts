import type { Fen } from './money.js';

/*
 * 价税合计（大写）, written per the People's Bank of China 《正确填写票据和结算凭证的基本规定》
 * (银发〔1997〕393号 附件) with 圆 as printed on invoices instead of 元:
 *
 * - 整: "到元为止的，在元之后应写整；在角之后可以不写整；有分的，分后面不写整". We write 整 after
 *   角 as well (伍角整): the PBoC allows it and 《会计基础工作规范》 第五十二条 requires it, and
 *   it stops anyone appending a 分 digit. Nothing follows 分.
 * - 零: a run of zeros between digits is one 零 (陆仟零柒圆, 壹亿零壹万圆整, 贰仟万零叁佰零伍圆);
 *   zeros that only end the part above a 万/亿 unit are silent (壹拾万柒仟圆), as in speech.
 * - Where the 圆 digit is 0 and 角 is not, the PBoC allows "零" or nothing; we always write 零
 *   (壹仟陆佰捌拾圆零叁角贰分, 壹拾万柒仟圆零伍角叁分). When 角 is 0 and 分 is not, 零 is
 *   required (壹万陆仟肆佰零玖圆零贰分).
 * - Below one yuan there is no 圆 (伍角整, 伍分); zero is 零圆整.
 * - The leading 壹 of 壹拾 is always written (壹拾万), as bank rules require, so nothing can be prefixed.
 * - Negative amounts (red-letter invoices) are prefixed with 负.
 */

const DIGITS = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'] as const;
const GROUP_UNITS = ['仟', '佰', '拾', ''] as const;

const TEN_THOUSAND = 10_000n;
const HUNDRED_MILLION = 100_000_000n;

export function amountInWords(value: Fen): string {
  if (value < 0n) return `负${amountInWords(-value)}`;
  const yuan = value / 100n;
  const jiao = Number((value / 10n) % 10n);
  const fen = Number(value % 10n);
  if (yuan === 0n) return value === 0n ? '零圆整' : fractionWords(jiao, fen);
  const integer = `${integerWords(yuan)}圆`;
  if (jiao === 0 && fen === 0) return `${integer}整`;
  const needsZero = jiao === 0 || yuan % 10n === 0n;
  return `${integer}${needsZero ? '零' : ''}${fractionWords(jiao, fen)}`;
}

function fractionWords(jiao: number, fen: number): string {
  const jiaoPart = jiao === 0 ? '' : `${DIGITS[jiao]}角`;
  return fen === 0 ? `${jiaoPart}整` : `${jiaoPart}${DIGITS[fen]}分`;
}

/** A positive integer in capitals, split at 亿 and then at 万, so any size works (壹万亿…). */
function integerWords(value: bigint): string {
  if (value >= HUNDRED_MILLION) return joinAtUnit(value, HUNDRED_MILLION, '亿');
  if (value >= TEN_THOUSAND) return joinAtUnit(value, TEN_THOUSAND, '万');
  return groupWords(Number(value));
}

function joinAtUnit(value: bigint, unitValue: bigint, unit: string): string {
  const high = `${integerWords(value / unitValue)}${unit}`;
  const low = value % unitValue;
  if (low === 0n) return high;
  // The lower part's leading zeros are read as one 零: 壹亿零壹万, 壹拾亿零壹.
  const gap = low * 10n < unitValue ? '零' : '';
  return `${high}${gap}${integerWords(low)}`;
}

/** 1..9999: one 零 for any run of zeros between digits, none at the end. */
function groupWords(value: number): string {
  const digits = String(value).padStart(4, '0');
  let words = '';
  let pendingZero = false;
  for (const [index, char] of [...digits].entries()) {
    const digit = Number(char);
    if (digit === 0) {
      pendingZero = words !== '';
      continue;
    }
    words += `${pendingZero ? '零' : ''}${DIGITS[digit]}${GROUP_UNITS[index]}`;
    pendingZero = false;
  }
  return words;
}
