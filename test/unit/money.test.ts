import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { faults } from '../../src/domain/faults.js';
import {
  MAX_INVOICE_FEN,
  assertInvoiceRange,
  divideRoundHalfUp,
  fen,
  formatYuan,
  parseYuan,
} from '../../src/domain/money.js';
import { faultOf } from '../support/faults.js';

describe('parsing yuan amounts into fen', () => {
  it.each([
    ['1000', 100000n],
    ['1000.5', 100050n],
    ['1000.50', 100050n],
    ['0', 0n],
    ['0.01', 1n],
    ['-3.20', -320n],
    ['-0.05', -5n],
    ['007.10', 710n],
    ['999999999999999.99', 99999999999999999n],
  ])('%s yuan is %s fen', (text, expected) => {
    expect(parseYuan(text, 'total')).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    [' 1.00', 'whitespace'],
    ['1.00 ', 'whitespace'],
    ['+1.00', "'+'"],
    ['1e3', 'exponent'],
    ['1E3', 'exponent'],
    ['1.234', '3 decimal places'],
    ['1.', 'not a decimal amount'],
    ['.5', 'not a decimal amount'],
    ['1,000.00', 'not a decimal amount'],
    ['--1', 'not a decimal amount'],
    ['１２', 'not a decimal amount'],
    ['NaN', 'not a decimal amount'],
    ['1234567890123456', 'more than 15 digits'],
  ])('rejects %j as AMOUNT_INVALID (%s)', (text, reason) => {
    const fault = faultOf(() => parseYuan(text, 'lines[2].amount'));
    expect(fault.spec).toBe(faults.AMOUNT_INVALID);
    expect(fault.params.field).toBe('lines[2].amount');
    expect(fault.params.reason?.en).toContain(reason);
  });

  it('fen() is the shorthand for well-formed text', () => {
    expect(fen('16409.02')).toBe(1640902n);
  });
});

describe('formatting fen as yuan', () => {
  it.each([
    [100050n, '1000.50'],
    [0n, '0.00'],
    [1n, '0.01'],
    [-5n, '-0.05'],
    [-320n, '-3.20'],
    [MAX_INVOICE_FEN, '99999999999.99'],
  ])('%s fen is "%s"', (value, text) => {
    expect(formatYuan(value)).toBe(text);
  });

  it('parsing the formatted text gives the amount back', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 17n) + 1n, max: 10n ** 17n - 1n }), (value) => {
        expect(parseYuan(formatYuan(value), 'x')).toBe(value);
      }),
    );
  });
});

describe('the invoice range', () => {
  it('allows 99,999,999,999.99 yuan in either sign', () => {
    expect(assertInvoiceRange(MAX_INVOICE_FEN, 'total')).toBe(MAX_INVOICE_FEN);
    expect(assertInvoiceRange(-MAX_INVOICE_FEN, 'total')).toBe(-MAX_INVOICE_FEN);
  });

  it.each([MAX_INVOICE_FEN + 1n, -MAX_INVOICE_FEN - 1n])('rejects %s fen as AMOUNT_OUT_OF_RANGE', (value) => {
    const fault = faultOf(() => assertInvoiceRange(value, 'lines'));
    expect(fault.spec).toBe(faults.AMOUNT_OUT_OF_RANGE);
    expect(fault.params).toMatchObject({ field: 'lines' });
    expect(fault.params.reason?.en).toContain('99999999999.99');
  });
});

describe('rounding a quotient half up (四舍五入)', () => {
  it.each([
    [4n, 10n, 0n],
    [5n, 10n, 1n],
    [15n, 10n, 2n],
    [14n, 10n, 1n],
    [-5n, 10n, -1n],
    [-4n, 10n, 0n],
    [1130n, 113n, 10n],
  ])('%s / %s → %s', (numerator, denominator, expected) => {
    expect(divideRoundHalfUp(numerator, denominator)).toBe(expected);
  });
});
