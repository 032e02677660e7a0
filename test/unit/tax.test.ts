import { describe, expect, it } from 'vitest';
import { faults } from '../../src/domain/faults.js';
import {
  checkLineTolerance,
  formatTaxRate,
  parseQuantity,
  parseTaxRate,
  parseUnitPrice,
  priceInvoiceLines,
  priceLine,
  unitPriceExcludingTax,
  type TaxRate,
} from '../../src/domain/tax.js';
import { faultOf } from '../support/faults.js';

const rate = (text: string): TaxRate => parseTaxRate(text, 'tax_rate');

describe('tax rates', () => {
  it.each([
    ['0.13', { kind: 'percent', percent: 13 }, '0.13'],
    ['0.09', { kind: 'percent', percent: 9 }, '0.09'],
    ['0.06', { kind: 'percent', percent: 6 }, '0.06'],
    ['0.05', { kind: 'percent', percent: 5 }, '0.05'],
    ['0.03', { kind: 'percent', percent: 3 }, '0.03'],
    ['0.01', { kind: 'percent', percent: 1 }, '0.01'],
    ['0', { kind: 'percent', percent: 0 }, '0'],
    ['0.0', { kind: 'percent', percent: 0 }, '0'],
    ['0.00', { kind: 'percent', percent: 0 }, '0'],
    ['exempt', { kind: 'exempt' }, 'exempt'],
    ['non_taxable', { kind: 'non_taxable' }, 'non_taxable'],
  ])('"%s" is accepted and written back as its canonical form', (text, parsed, canonical) => {
    expect(parseTaxRate(text, 'lines[0].tax_rate')).toEqual(parsed);
    expect(formatTaxRate(parseTaxRate(text, 'lines[0].tax_rate'))).toBe(canonical);
  });

  it.each(['0.17', '0.16', '0.10', '0.130', '13%', '13', '.13', ' 0.13', 'EXEMPT', '免税', ''])(
    'rejects %j as TAX_RATE_UNKNOWN, naming the field and the value',
    (text) => {
      const fault = faultOf(() => parseTaxRate(text, 'lines[3].tax_rate'));
      expect(fault.spec).toBe(faults.TAX_RATE_UNKNOWN);
      expect(fault.params).toEqual({ field: 'lines[3].tax_rate', value: text });
    },
  );
});

describe('quantities and unit prices', () => {
  it.each(['1', '2.5', '0.00000001', '1.12345678', '1000000000000', '000.5'])('quantity %s is accepted exactly', (text) => {
    expect(parseQuantity(text, 'lines[0].quantity').toFixed()).toBe(text.replace(/^0+(?=\d)/, ''));
  });

  it.each([
    ['0', 'greater than 0'],
    ['0.00', 'greater than 0'],
    ['-1', 'greater than 0'],
    ['1.123456789', '9 decimal places'],
    ['1000000000000.00000001', 'must not exceed 1000000000000'],
    ['1e3', 'not a plain decimal'],
    ['+1', 'not a plain decimal'],
    [' 1', 'not a plain decimal'],
    ['1.', 'not a plain decimal'],
    ['', 'not a plain decimal'],
    ['Infinity', 'not a plain decimal'],
    ['0x10', 'not a plain decimal'],
  ])('quantity %j is rejected as QUANTITY_INVALID: %s', (text, reason) => {
    const fault = faultOf(() => parseQuantity(text, 'lines[1].quantity'));
    expect(fault.spec).toBe(faults.QUANTITY_INVALID);
    expect(fault.params.field).toBe('lines[1].quantity');
    expect(fault.params.reason?.en).toContain(reason);
  });

  it.each([
    ['0', 'greater than 0'],
    ['-0.01', 'greater than 0'],
    ['0.000000001', '9 decimal places'],
    ['1000000000001', 'must not exceed'],
    ['1,000', 'not a plain decimal'],
  ])('unit price %j is rejected as UNIT_PRICE_INVALID: %s', (text, reason) => {
    const fault = faultOf(() => parseUnitPrice(text, 'lines[0].unit_price'));
    expect(fault.spec).toBe(faults.UNIT_PRICE_INVALID);
    expect(fault.params.field).toBe('lines[0].unit_price');
    expect(fault.params.reason?.en).toContain(reason);
  });

  it('keeps every digit of a product of the largest quantity and price (no 20-digit default precision)', () => {
    const quantity = parseQuantity('999999999999.99999999', 'q');
    const price = parseUnitPrice('999999999999.99999999', 'p');
    expect(quantity.times(price).toFixed()).toBe('999999999999999999980000.0000000000000001');
  });
});

function price(quantity: string, unitPrice: string, rateText: string, pricesIncludeTax: boolean) {
  return priceLine(
    { quantity: parseQuantity(quantity, 'q'), unitPrice: parseUnitPrice(unitPrice, 'p'), rate: rate(rateText), pricesIncludeTax },
    'lines[0]',
  );
}

describe('pricing a line with prices excluding tax (不含税)', () => {
  it.each([
    ['1', '100', '0.13', 10000n, 1300n],
    ['3', '33.333', '0.13', 10000n, 1300n], // 99.999 → 100.00
    ['1', '0.125', '0.06', 13n, 1n], // half up: 0.125 → 0.13, tax 0.0078 → 0.01
    ['1', '0.005', '0.13', 1n, 0n], // the smallest line: 0.005 → 0.01
    ['1', '0.50', '0.01', 50n, 1n], // tax 0.005 → 0.01
    ['1.5', '199.99', '0.09', 29999n, 2700n], // 299.985 → 299.99, tax 26.9991 → 27.00
    ['2', '1.005', '0.03', 201n, 6n],
    ['10', '99.9', 'exempt', 99900n, 0n],
    ['10', '99.9', 'non_taxable', 99900n, 0n],
    ['10', '99.9', '0', 99900n, 0n],
  ])('%s × %s at %s: amount %s fen, tax %s fen', (quantity, unitPrice, rateText, amount, tax) => {
    expect(price(quantity, unitPrice, rateText, false)).toEqual({ amount, tax });
  });
});

describe('pricing a line with prices including tax (含税)', () => {
  it.each([
    ['1', '113', '0.13', 10000n, 1300n],
    ['1', '106', '0.06', 10000n, 600n],
    ['1', '100', '0.13', 8850n, 1150n], // tax 11.5044 → 11.50
    ['3', '33.33', '0.09', 9173n, 826n], // 99.99 incl, tax 99.99 × 9 / 109 = 8.2560 → 8.26
    ['1', '100', 'exempt', 10000n, 0n],
  ])('%s × %s at %s: amount %s fen, tax %s fen, together the rounded product', (quantity, unitPrice, rateText, amount, tax) => {
    expect(price(quantity, unitPrice, rateText, true)).toEqual({ amount, tax });
  });
});

describe('line amounts out of range', () => {
  it('rejects a line whose amount rounds to zero fen', () => {
    const fault = faultOf(() => price('0.001', '0.001', '0.13', false));
    expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(fault.params.field).toBe('lines[0].amount');
    expect(fault.params.reason?.en).toContain('line amount rounds to zero');
  });

  it('rejects a line beyond what one invoice may carry', () => {
    const fault = faultOf(() => price('1000000000000', '1000', 'exempt', false));
    expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(fault.params.field).toBe('lines[0].amount');
  });

  it('counts the tax too: an amount at the limit plus its tax is beyond it', () => {
    expect(faultOf(() => price('1', '99999999999.99', '0.13', false)).spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(price('1', '99999999999.99', 'exempt', false).amount).toBe(9_999_999_999_999n);
  });
});

describe('the official tolerance checks of a line', () => {
  // 3 × 33.333 = 99.999 unless another unit price is given.
  const line = (amount: bigint, tax: bigint, rateText = '0.13', pricesIncludeTax = false, unitPrice = '33.333') => ({
    quantity: parseQuantity('3', 'q'),
    unitPrice: parseUnitPrice(unitPrice, 'p'),
    rate: rate(rateText),
    pricesIncludeTax,
    amount,
    tax,
  });

  it.each([
    ['computed', 10000n, 1300n],
    ['amount 0.009 below the product', 9999n, 1300n],
    ['tax 0.06 above amount × rate', 10000n, 1306n],
    ['tax 0.06 below amount × rate', 10000n, 1294n],
  ])('accepts the %s line', (_name, amount, tax) => {
    expect(() => checkLineTolerance(line(amount, tax), 'lines[0]')).not.toThrow();
  });

  it('accepts an amount exactly 0.01 away from the product', () => {
    expect(() => checkLineTolerance(line(10001n, 1300n, '0.13', false, '33.34'), 'lines[0]')).not.toThrow(); // 100.02
    expect(() => checkLineTolerance(line(10003n, 1300n, '0.13', false, '33.34'), 'lines[0]')).not.toThrow();
  });

  it.each([
    ['amount 0.011 above', 10001n, 1300n, 'lines[0].amount', 'by 0.011 (limit 0.01)'],
    ['amount 0.02 off', 9998n, 1300n, 'lines[0].amount', 'limit 0.01'],
    ['tax 0.07 over', 10000n, 1307n, 'lines[0].tax', 'limit 0.06'],
    ['tax 0.07 under', 10000n, 1293n, 'lines[0].tax', 'limit 0.06'],
  ])('rejects the line with %s as TAX_TOLERANCE_EXCEEDED', (_name, amount, tax, field, reason) => {
    const fault = faultOf(() => checkLineTolerance(line(amount, tax), 'lines[0]'));
    expect(fault.spec).toBe(faults.TAX_TOLERANCE_EXCEEDED);
    expect(fault.params.field).toBe(field);
    expect(fault.params.reason?.en).toContain(reason);
  });

  it('compares the product with amount + tax when prices include tax', () => {
    expect(() => checkLineTolerance(line(8850n, 1150n, '0.13', true), 'lines[0]')).not.toThrow();
    expect(faultOf(() => checkLineTolerance(line(10000n, 1300n, '0.13', true), 'lines[0]')).params.field).toBe(
      'lines[0].amount',
    );
  });

  it.each(['exempt', 'non_taxable', '0'])('allows no tax at all on a %s line', (rateText) => {
    expect(() => checkLineTolerance(line(10000n, 0n, rateText), 'lines[0]')).not.toThrow();
    const fault = faultOf(() => checkLineTolerance(line(10000n, 1n, rateText), 'lines[0]'));
    expect(fault.spec).toBe(faults.TAX_TOLERANCE_EXCEEDED);
    expect(fault.params.field).toBe('lines[0].tax');
  });
});

describe('pricing the lines of an invoice', () => {
  it('prices every line and totals amount, tax and 价税合计', () => {
    const invoice = priceInvoiceLines(
      [
        { quantity: '2', unit_price: '500', tax_rate: '0.13' },
        { quantity: '1.5', unit_price: '199.99', tax_rate: '0.09' },
        { quantity: '1', unit_price: '88', tax_rate: 'exempt' },
      ],
      false,
    );
    expect(invoice.lines.map((line) => [line.amount, line.tax])).toEqual([
      [100000n, 13000n],
      [29999n, 2700n],
      [8800n, 0n],
    ]);
    expect(invoice.lines[1]?.rate).toEqual({ kind: 'percent', percent: 9 });
    expect(invoice.lines[1]?.quantity.toFixed()).toBe('1.5');
    expect(invoice.totalAmount).toBe(138799n);
    expect(invoice.totalTax).toBe(15700n);
    expect(invoice.totalWithTax).toBe(154499n);
  });

  it('names the field of the first problem and lists every problem in the details', () => {
    const fault = faultOf(() =>
      priceInvoiceLines(
        [
          { quantity: '1', unit_price: '10', tax_rate: '0.13' },
          { quantity: '0', unit_price: '10', tax_rate: '0.13' },
          { quantity: '1', unit_price: '10', tax_rate: '0.17' },
        ],
        false,
      ),
    );
    expect(fault.spec).toBe(faults.QUANTITY_INVALID);
    expect(fault.params.field).toBe('lines[1].quantity');
    expect(fault.details.map((detail) => detail.field)).toEqual(['lines[1].quantity', 'lines[2].tax_rate']);
    expect(fault.details[1]?.issue).toContain("'0.17'");
  });

  it('rejects an invoice without lines', () => {
    const fault = faultOf(() => priceInvoiceLines([], false));
    expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(fault.params.field).toBe('lines');
  });

  it('rejects totals beyond what one invoice may carry, even when each line is within', () => {
    const big = { quantity: '60000000000', unit_price: '1', tax_rate: 'exempt' };
    const fault = faultOf(() => priceInvoiceLines([big, big], false));
    expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(fault.params.field).toBe('lines');
  });

  // 0.50 at 1 % is 0.005 of tax, charged as 0.01: each such line adds half a fen of drift.
  const driftingLines = (count: number) =>
    Array.from({ length: count }, () => ({ quantity: '1', unit_price: '0.50', tax_rate: '0.01' }));

  it('accepts an accumulated tax difference of exactly 1.27', () => {
    const invoice = priceInvoiceLines(driftingLines(254), false);
    expect(invoice.totalTax).toBe(254n);
  });

  it('rejects an accumulated tax difference beyond 1.27 as TAX_TOLERANCE_EXCEEDED on "lines"', () => {
    const fault = faultOf(() => priceInvoiceLines(driftingLines(255), false));
    expect(fault.spec).toBe(faults.TAX_TOLERANCE_EXCEEDED);
    expect(fault.params.field).toBe('lines');
    expect(fault.params.reason?.en).toContain('1.275');
  });
});

describe('单价 as printed: excluding tax, like 金额', () => {
  it.each([
    // amount (fen), quantity, printed unit price
    [9433n, '3', '31.44333333'], // 3 × 33.33 incl. 6 %: 94.33 before tax
    [10000n, '4', '25'], // exact: no decimals left
    [10000n, '3', '33.33333333'],
    [20000n, '3', '66.66666667'], // …6666|6666… rounds up
    [1n, '1024', '0.00000977'], // 0.000009765625: the 9th decimal 5 rounds up
    [1n, '2000000', '0.00000001'], // exactly half of 10^-8 rounds up (四舍五入, not to even)
    [111000n, '12.5', '88.8'],
    [9433n, '0.00000001', '9433000000'],
    [9_999_999_999_999n, '123456789012.1234567', '0.81000001'], // 0.810000007…: the largest amount over a 19-digit quantity
  ])('%s fen ÷ %s → %s', (amount, quantity, printed) => {
    expect(unitPriceExcludingTax({ quantity, unitPrice: 'ignored', amount }, true)).toBe(printed);
  });

  it('is the price as entered when prices exclude tax', () => {
    expect(unitPriceExcludingTax({ quantity: '3', unitPrice: '33.333', amount: 10000n }, false)).toBe('33.333');
  });
});
