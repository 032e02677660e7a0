import { bilingual, Fault, faults, type Bilingual } from './faults.js';

/** Money inside the program: integer fen (分, 1/100 yuan). Never a JS number, so never a binary float. */
export type Fen = bigint;

/**
 * The largest amount any figure on one invoice may reach: 99,999,999,999.99 yuan.
 * It is far beyond any real invoice, and it keeps amounts within what the invoice layout,
 * the tax-service protocol and the 大写 line (hundreds of 亿) are built for.
 */
export const MAX_INVOICE_FEN: Fen = 9_999_999_999_999n;

const MAX_INTEGER_DIGITS = 15;

// Plain decimal notation only: an exponent, a '+', spaces or thousands separators in an amount
// usually mean the figure came from a spreadsheet or a float and may not be what the merchant typed.
const YUAN_TEXT = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Parses a yuan amount such as "1000.50" or "-3.20" (red-letter) into fen. */
export function parseYuan(text: string, field: string): Fen {
  const match = YUAN_TEXT.exec(text);
  if (!match) throw invalidAmount(field, describeMalformed(text));
  const [, sign = '', integer = '', decimals = ''] = match;
  if (integer.length > MAX_INTEGER_DIGITS) {
    throw invalidAmount(field, bilingual(`整数部分超过 ${MAX_INTEGER_DIGITS} 位`, `more than ${MAX_INTEGER_DIGITS} digits before the decimal point`));
  }
  if (decimals.length > 2) {
    throw invalidAmount(field, bilingual(`有 ${decimals.length} 位小数，金额最多保留 2 位（到分）`, `${decimals.length} decimal places; amounts have at most 2 (fen)`));
  }
  const magnitude = BigInt(integer) * 100n + BigInt(decimals.padEnd(2, '0'));
  return sign === '-' ? -magnitude : magnitude;
}

/** Converts a yuan string to fen where the text is known to be well formed (tests, constants). */
export function fen(yuan: string): Fen {
  return parseYuan(yuan, 'amount');
}

/** Formats fen as a yuan string with exactly two decimals: 100050n → "1000.50", -5n → "-0.05". */
export function formatYuan(value: Fen): string {
  const magnitude = value < 0n ? -value : value;
  const yuan = magnitude / 100n;
  const cents = (magnitude % 100n).toString().padStart(2, '0');
  return `${value < 0n ? '-' : ''}${yuan}.${cents}`;
}

/** Throws AMOUNT_OUT_OF_RANGE when a figure exceeds what an invoice may carry (either sign). */
export function assertInvoiceRange(value: Fen, field: string): Fen {
  const magnitude = value < 0n ? -value : value;
  if (magnitude > MAX_INVOICE_FEN) {
    throw new Fault(faults.AMOUNT_OUT_OF_RANGE, {
      field,
      reason: bilingual(
        `${formatYuan(value)} 超过单张发票的上限 ${formatYuan(MAX_INVOICE_FEN)}`,
        `${formatYuan(value)} exceeds the limit of ${formatYuan(MAX_INVOICE_FEN)} for one invoice`,
      ),
    });
  }
  return value;
}

/** Divides and rounds half away from zero, the rounding of the official invoicing software (四舍五入). */
export function divideRoundHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const magnitude = numerator < 0n ? -numerator : numerator;
  const rounded = (magnitude * 2n + denominator) / (denominator * 2n);
  return numerator < 0n ? -rounded : rounded;
}

function describeMalformed(text: string): Bilingual {
  if (text === '') return bilingual('为空，应填写金额，例如 1000.50', 'empty; expected an amount such as 1000.50');
  if (/\s/.test(text)) return bilingual('含有空格，应填写金额，例如 1000.50', 'contains whitespace; expected an amount such as 1000.50');
  if (/[eE]/.test(text)) return bilingual('不允许使用科学计数法，请完整写出金额，例如 1000.50', 'exponent notation is not allowed; write the amount out, e.g. 1000.50');
  if (text.startsWith('+')) return bilingual('开头不允许有“+”', "a leading '+' is not allowed");
  return bilingual(`“${text}”不是十进制金额（例如 1000.50）`, `'${text}' is not a decimal amount such as 1000.50`);
}

function invalidAmount(field: string, reason: Bilingual): Fault {
  return new Fault(faults.AMOUNT_INVALID, { field, reason });
}
