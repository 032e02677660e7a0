import { describe, expect, it } from 'vitest';
import { amountInWords } from '../../src/domain/amount-in-words.js';
import { fen } from '../../src/domain/money.js';

// Examples follow 《正确填写票据和结算凭证的基本规定》 (PBoC) with 圆 as printed on invoices;
// the first group are the regulation's own examples.
describe('价税合计 in capitals', () => {
  it.each([
    ['1409.50', '壹仟肆佰零玖圆伍角整'],
    ['6007.14', '陆仟零柒圆壹角肆分'],
    ['1680.32', '壹仟陆佰捌拾圆零叁角贰分'],
    ['107000.53', '壹拾万柒仟圆零伍角叁分'],
    ['16409.02', '壹万陆仟肆佰零玖圆零贰分'],
    ['325.04', '叁佰贰拾伍圆零肆分'],
  ])('regulation example %s → %s', (amount, words) => expect(amountInWords(fen(amount))).toBe(words));

  it.each([
    ['0', '零圆整'],
    ['0.05', '伍分'],
    ['0.50', '伍角整'],
    ['0.35', '叁角伍分'],
    ['1.00', '壹圆整'],
    ['10.00', '壹拾圆整'],
    ['15.00', '壹拾伍圆整'],
    ['105.00', '壹佰零伍圆整'],
    ['110.00', '壹佰壹拾圆整'],
    ['1001.01', '壹仟零壹圆零壹分'],
    ['1010.00', '壹仟零壹拾圆整'],
    ['10000.00', '壹万圆整'],
    ['100100.00', '壹拾万零壹佰圆整'],
    ['101000.00', '壹拾万壹仟圆整'],
    ['1000000.00', '壹佰万圆整'],
    ['1004000.00', '壹佰万肆仟圆整'],
    ['1000400.00', '壹佰万零肆佰圆整'],
    ['20000305.10', '贰仟万零叁佰零伍圆壹角整'],
    ['100000000.00', '壹亿圆整'],
    ['100000000.01', '壹亿圆零壹分'],
    ['100010000.00', '壹亿零壹万圆整'],
    ['1000000001.00', '壹拾亿零壹圆整'],
    ['1200000000.00', '壹拾贰亿圆整'],
    ['30005000600.70', '叁佰亿零伍佰万零陆佰圆零柒角整'],
    ['99999999999.99', '玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖圆玖角玖分'],
  ])('%s → %s', (amount, words) => expect(amountInWords(fen(amount))).toBe(words));
});

describe('整 and 零 around the decimal point', () => {
  it('writes 整 after 圆 when there are no 角 or 分', () => expect(amountInWords(fen('8.00'))).toBe('捌圆整'));
  it('writes 整 after 角 when no 分 follows', () => expect(amountInWords(fen('8.30'))).toBe('捌圆叁角整'));
  it('writes nothing after 分', () => expect(amountInWords(fen('8.34'))).toBe('捌圆叁角肆分'));
  it('writes 零 for a zero 角 before 分', () => expect(amountInWords(fen('8.04'))).toBe('捌圆零肆分'));
  it('writes 零 after 圆 when the 圆 digit is zero and 角 is not', () =>
    expect(amountInWords(fen('80.30'))).toBe('捌拾圆零叁角整'));
  it('writes no 圆 below one yuan', () => expect(amountInWords(fen('0.04'))).toBe('肆分'));
});

describe('red-letter (负数) amounts', () => {
  it.each([
    ['-3.20', '负叁圆贰角整'],
    ['-1680.32', '负壹仟陆佰捌拾圆零叁角贰分'],
    ['-0.05', '负伍分'],
  ])('%s → %s', (amount, words) => expect(amountInWords(fen(amount))).toBe(words));
});

describe('amounts beyond one invoice', () => {
  it('still reads correctly above 亿 (万亿)', () => {
    expect(amountInWords(fen('1000000000000.00'))).toBe('壹万亿圆整');
    expect(amountInWords(fen('1000100000000.00'))).toBe('壹万零壹亿圆整');
  });
});
