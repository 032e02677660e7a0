import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import { amountInWords } from '../../src/domain/amount-in-words.js';
import { Fault, faults } from '../../src/domain/faults.js';
import { MAX_INVOICE_FEN } from '../../src/domain/money.js';
import {
  checkLineTolerance,
  parseQuantity,
  parseTaxRate,
  parseUnitPrice,
  priceInvoiceLines,
  priceLine,
  unitPriceExcludingTax,
} from '../../src/domain/tax.js';

const RATE_TEXTS = ['0.13', '0.09', '0.06', '0.05', '0.03', '0.01', '0', 'exempt', 'non_taxable'];

/** Positive decimal text with up to 8 decimals, from `min` to 10^maxDigits (in whole units). */
function decimalText(maxDigits: number, min = 0n) {
  return fc.integer({ min: 0, max: 8 }).chain((decimals) => {
    const scale = 10n ** BigInt(decimals);
    return fc.bigInt({ min: min * scale > 0n ? min * scale : 1n, max: 10n ** BigInt(maxDigits) * scale }).map((units) => {
      if (decimals === 0) return units.toString();
      const digits = units.toString().padStart(decimals + 1, '0');
      return `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
    });
  });
}

// Up to 10^5 × 10^5 = 10^10 yuan, so every line stays within one invoice.
const lineText = fc.record({ quantity: decimalText(5), unit_price: decimalText(5), tax_rate: fc.constantFrom(...RATE_TEXTS) });
const priceMode = fc.boolean();

function roundedProductFen(quantity: string, unitPrice: string): bigint {
  const product = new Decimal(quantity).times(unitPrice);
  return BigInt(product.times(100).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));
}

function parsed(line: { quantity: string; unit_price: string; tax_rate: string }) {
  return {
    quantity: parseQuantity(line.quantity, 'q'),
    unitPrice: parseUnitPrice(line.unit_price, 'p'),
    rate: parseTaxRate(line.tax_rate, 'r'),
  };
}

describe('pricing lines, for any quantity, price, rate and price mode', () => {
  it('gives amount + tax (含税) or amount (不含税) equal to round(quantity × price, 2), and passes the official checks', () => {
    fc.assert(
      fc.property(lineText, priceMode, (line, pricesIncludeTax) => {
        const input = { ...parsed(line), pricesIncludeTax };
        const gross = roundedProductFen(line.quantity, line.unit_price);
        if (gross === 0n) {
          expect(() => priceLine(input, 'lines[0]')).toThrow(Fault);
          return;
        }
        const { amount, tax } = priceLine(input, 'lines[0]');
        expect(pricesIncludeTax ? amount + tax : amount).toBe(gross);
        expect(tax >= 0n && amount > 0n).toBe(true);
        expect(() => checkLineTolerance({ ...input, amount, tax }, 'lines[0]')).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects exactly the lines whose amount rounds to zero fen', () => {
    const tiny = fc.record({ quantity: decimalText(0), unit_price: decimalText(0), tax_rate: fc.constantFrom(...RATE_TEXTS) });
    fc.assert(
      fc.property(tiny, priceMode, (line, pricesIncludeTax) => {
        const input = { ...parsed(line), pricesIncludeTax };
        const gross = roundedProductFen(line.quantity, line.unit_price);
        let fault: unknown;
        try {
          priceLine(input, 'lines[0]');
        } catch (error) {
          fault = error;
        }
        // Including tax, a 1-fen line at 13 % still has an amount: tax round(0.0115) is 0.
        expect(fault === undefined).toBe(gross > 0n);
        if (fault instanceof Fault) expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
      }),
    );
  });
});

describe('单价 as printed, for any tax-inclusive line', () => {
  it('is 金额 ÷ 数量 to within half of its last (8th) decimal, written without trailing zeros', () => {
    fc.assert(
      fc.property(lineText, (line) => {
        const input = { ...parsed(line), pricesIncludeTax: true };
        if (roundedProductFen(line.quantity, line.unit_price) === 0n) return;
        const { amount } = priceLine(input, 'lines[0]');
        const printed = unitPriceExcludingTax({ quantity: input.quantity.toFixed(), unitPrice: line.unit_price, amount }, true);
        const exact = new Decimal(amount.toString()).dividedBy(100).dividedBy(line.quantity);
        expect(new Decimal(printed).minus(exact).abs().lessThanOrEqualTo('0.000000005')).toBe(true);
        expect(printed).toMatch(/^\d+(\.\d{0,7}[1-9])?$/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('pricing an invoice', () => {
  const invoiceLine = fc.record({ quantity: decimalText(4, 1n), unit_price: decimalText(4, 1n), tax_rate: fc.constantFrom(...RATE_TEXTS) });

  it('prices each line as on its own and totals are the sums', () => {
    fc.assert(
      fc.property(fc.array(invoiceLine, { minLength: 1, maxLength: 20 }), priceMode, (lines, pricesIncludeTax) => {
        const invoice = priceInvoiceLines(lines, pricesIncludeTax);
        lines.forEach((line, index) => {
          const alone = priceLine({ ...parsed(line), pricesIncludeTax }, `lines[${index}]`);
          expect(invoice.lines[index]).toMatchObject(alone);
        });
        const totalAmount = invoice.lines.reduce((sum, line) => sum + line.amount, 0n);
        const totalTax = invoice.lines.reduce((sum, line) => sum + line.tax, 0n);
        expect(invoice.totalAmount).toBe(totalAmount);
        expect(invoice.totalTax).toBe(totalTax);
        expect(invoice.totalWithTax).toBe(totalAmount + totalTax);
      }),
      { numRuns: 300 },
    );
  });
});

// An independent reading of the capitals, to prove amountInWords loses nothing.
const DIGIT_VALUES = new Map([...'零壹贰叁肆伍陆柒捌玖'].map((char, value) => [char, BigInt(value)]));
const SMALL_UNITS = new Map([['拾', 10n], ['佰', 100n], ['仟', 1000n]]);

function readInteger(words: string): bigint {
  const yi = words.lastIndexOf('亿');
  if (yi >= 0) return readInteger(words.slice(0, yi)) * 100_000_000n + readInteger(words.slice(yi + 1));
  const wan = words.lastIndexOf('万');
  if (wan >= 0) return readInteger(words.slice(0, wan)) * 10_000n + readInteger(words.slice(wan + 1));
  let total = 0n;
  let digit = 0n;
  for (const char of words) {
    const unit = SMALL_UNITS.get(char);
    if (unit !== undefined) {
      total += digit * unit;
      digit = 0n;
    } else {
      const value = DIGIT_VALUES.get(char);
      if (value === undefined) throw new Error(`unexpected '${char}' in ${words}`);
      digit = value;
    }
  }
  return total + digit;
}

function readAmount(words: string): bigint {
  if (words.startsWith('负')) return -readAmount(words.slice(1));
  const body = words.replace(/整$/, '');
  const [integer, fraction] = body.includes('圆') ? body.split('圆') : ['', body];
  const match = /^零?(?:(.)角)?(?:(.)分)?$/.exec(fraction ?? '');
  if (!match) throw new Error(`cannot read the fraction of ${words}`);
  return readInteger(integer ?? '') * 100n + readDigit(match[1]) * 10n + readDigit(match[2]);
}

function readDigit(char: string | undefined): bigint {
  if (char === undefined) return 0n;
  const value = DIGIT_VALUES.get(char);
  if (value === undefined) throw new Error(`'${char}' is not a digit`);
  return value;
}

describe('价税合计 in capitals, for any amount from 0 to the invoice maximum', () => {
  // Bias towards amounts full of zeros, where the 零 rules live.
  const sparse = fc
    .array(fc.constantFrom(0n, 0n, 0n, 1n, 5n, 9n), { minLength: 1, maxLength: 13 })
    .map((digits) => digits.reduce<bigint>((value, digit) => value * 10n + digit, 0n));
  const amount = fc.oneof(fc.bigInt({ min: 0n, max: MAX_INVOICE_FEN }), sparse);

  it('reads back as the same amount', () => {
    fc.assert(
      fc.property(amount, (value) => {
        expect(readAmount(amountInWords(value))).toBe(value);
        expect(readAmount(amountInWords(-value))).toBe(-value);
      }),
      { numRuns: 5000 },
    );
  });

  it('never has two 零 in a row, never ends in 零, and ends in 圆整, 角整 or 分', () => {
    fc.assert(
      fc.property(amount, (value) => {
        const words = amountInWords(value);
        expect(words).not.toContain('零零');
        expect(words).toMatch(/(圆整|角整|分)$/);
        expect(words).not.toMatch(/零(整)?$/);
        expect(words).not.toMatch(/^零(?!圆整)/);
        expect(words).toMatch(/^[零壹贰叁肆伍陆柒捌玖拾佰仟万亿圆角分整]+$/);
      }),
      { numRuns: 5000 },
    );
  });

  it('writes 整 exactly when there is no 分', () => {
    fc.assert(
      fc.property(amount, (value) => {
        expect(amountInWords(value).endsWith('整')).toBe(value % 10n === 0n);
      }),
    );
  });
});
