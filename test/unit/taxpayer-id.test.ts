import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Fault, faults } from '../../src/domain/faults.js';
import {
  organisationCodeCheckCharacter,
  usccCheckCharacter,
  validateTaxpayerId,
} from '../../src/domain/taxpayer-id.js';

function reasonFor(id: string): string {
  try {
    validateTaxpayerId(id);
  } catch (error) {
    if (!(error instanceof Fault)) throw error;
    expect(error.spec).toBe(faults.BUYER_TAX_ID_INVALID);
    return error.params.reason?.en ?? '';
  }
  throw new Error(`expected ${id} to be rejected`);
}

const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';

describe('统一社会信用代码 (GB 32100-2015)', () => {
  it.each([
    ['91350100M000100Y43'], // the example of the standard's explanatory material
    ['12440600MB2C07549J'], // a public institution (事业单位)
    ['92141127MA0KD1Y64A'], // an individual business (个体工商户)
  ])('accepts the published code %s', (id) => {
    expect(validateTaxpayerId(id)).toEqual({ kind: 'uscc', normalized: id });
  });

  it('computes the check character of the published example', () => {
    expect(usccCheckCharacter('91350100M000100Y4')).toBe('3');
  });

  // 11 − (Σ value × weight mod 11), where 10 is written X and 11 is written 0.
  it.each([
    ['01234567', '1'],
    ['00000030', 'X'],
    ['00000000', '0'],
    ['M000100Y', '4'],
  ])('organisation code %s… has check character %s', (first8, check) => {
    expect(organisationCodeCheckCharacter(first8)).toBe(check);
  });

  it('writes the organisation code checks 10 and 11 as X and 0', () => {
    const checks = new Set<string>();
    for (let n = 0; n < 2000; n++) checks.add(organisationCodeCheckCharacter(String(n).padStart(8, '0')));
    expect([...checks].sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X']);
  });

  it.each([
    ['91350100M000100Y44', "check character at position 18 should be '3', found '4'"],
    ['91350100M000100Y53', "organisation code check character at position 17 should be '4', found '5'"],
    ['91350100O000100Y43', "character 'O' at position 9 is not allowed"],
    ['91350100M000100I43', "character 'I' at position 16 is not allowed"],
    ['Z1350100M000100Y43', "character 'Z' at position 1 is not allowed"],
    ['9135010AM000100Y43', "character 'A' at position 8 is not allowed: positions 3–8 are the administrative division code"],
    ['91350100m000100Y43', "lower-case 'm' at position 9; letters must be upper case ('M')"],
    ['91350100M000100y43', "lower-case 'y' at position 16"],
    ['91350100M000-00Y43', "character '-' at position 13 is not allowed"],
    ['９1350100M000100Y43', "character '９' at position 1 is not allowed"],
    ['91350100M000100Y43 ', 'whitespace at position 19 is not allowed'],
    [' 91350100M000100Y43', 'whitespace at position 1 is not allowed'],
    ['9135 0100M000100Y43', 'whitespace at position 5 is not allowed'],
    // An ID card number that happens to pass the mod-31 check is caught by the organisation code check.
    ['362322198709086409', "organisation code check character at position 17 should be '5', found '0'"],
  ])('rejects %j: %s', (id, reason) => {
    expect(reasonFor(id)).toContain(reason);
  });

  it('explains which letters never occur', () => {
    expect(reasonFor('91350100O000100Y43')).toBe(
      "character 'O' at position 9 is not allowed (I, O, S, V and Z never occur in a 统一社会信用代码)",
    );
  });

  it.each([
    ['', 'empty; expected 18 (统一社会信用代码), or 15, 17 or 20 (legacy 税务登记证号)'],
    ['9135010', 'length 7; expected 18 (统一社会信用代码), or 15, 17 or 20 (legacy 税务登记证号)'],
    ['91350100M000100Y430', 'length 19; expected 18 (统一社会信用代码), or 15, 17 or 20 (legacy 税务登记证号)'],
  ])('rejects %j by its length: %s', (id, reason) => {
    expect(reasonFor(id)).toBe(reason);
  });

  it('reads a USCC with a character missing as a broken 17-character legacy ID and says why', () => {
    expect(reasonFor('91350100M000100Y4')).toBe(
      "character 'M' at position 9 is not allowed: a 17-character legacy ID is a 15-digit ID card number and 2 digits; a 统一社会信用代码 has 18 characters",
    );
  });

  it('rejects bad input to the check-character functions as a programming error', () => {
    expect(() => usccCheckCharacter('91350100M000100Y')).toThrow(RangeError);
    expect(() => usccCheckCharacter('91350100O000100Y4')).toThrow(RangeError);
  });
});

describe('legacy taxpayer IDs (税务登记证号)', () => {
  it.each([
    ['350100123456789', 'legacy15'], // division code + organisation code
    ['35010012345678X', 'legacy15'],
    ['35010280010112301', 'legacy17'], // 15-digit ID card number + 2 digits
    ['35010219800101123401', 'legacy20'], // 18-digit ID card number + 2 digits
    ['35010219800101123X01', 'legacy20'],
  ])('accepts %s as %s', (id, kind) => {
    expect(validateTaxpayerId(id)).toEqual({ kind, normalized: id });
  });

  it.each([
    ['3501A0123456789', "character 'A' at position 5 is not allowed: a 15-character legacy ID starts with a 6-digit administrative division code"],
    ['3501021980010112A01', 'length 19; expected 18 (统一社会信用代码), or 15, 17 or 20 (legacy 税务登记证号)'],
    ['3501021980010112AB01', "character 'A' at position 17 is not allowed: a 20-character legacy ID is an 18-digit ID card number and 2 digits"],
    ['35010219800101123Y01', "character 'Y' at position 18 is not allowed: a 20-character legacy ID is an 18-digit ID card number and 2 digits (the ID card number may end in X)"],
    ['35010219800101123XA1', "character 'A' at position 19 is not allowed"],
    ['35010012345678x', "lower-case 'x' at position 15"],
  ])('rejects %j: %s', (id, reason) => {
    expect(reasonFor(id)).toContain(reason);
  });
});

describe('USCC check character, for any well-formed code', () => {
  const char = fc.constantFrom(...USCC_ALPHABET);
  const digit = fc.constantFrom(...'0123456789');
  const first17 = fc
    .tuple(fc.array(char, { minLength: 2, maxLength: 2 }), fc.array(digit, { minLength: 6, maxLength: 6 }), fc.array(char, { minLength: 8, maxLength: 8 }))
    .map(([head, division, organisation]) => {
      const body = organisation.join('');
      return head.join('') + division.join('') + body + organisationCodeCheckCharacter(body);
    });

  it('makes the code valid', () => {
    fc.assert(
      fc.property(first17, (prefix) => {
        const id = prefix + usccCheckCharacter(prefix);
        expect(validateTaxpayerId(id)).toEqual({ kind: 'uscc', normalized: id });
      }),
    );
  });

  it('is the only one that does: any other check character is rejected at position 18', () => {
    fc.assert(
      fc.property(first17, char, (prefix, other) => {
        const check = usccCheckCharacter(prefix);
        fc.pre(other !== check);
        expect(reasonFor(prefix + other)).toBe(`check character at position 18 should be '${check}', found '${other}'`);
      }),
    );
  });

  it('catches any single changed character of the first 17', () => {
    fc.assert(
      fc.property(first17, fc.integer({ min: 0, max: 16 }), char, (prefix, index, replacement) => {
        fc.pre(prefix[index] !== replacement);
        const id = prefix + usccCheckCharacter(prefix);
        const changed = id.slice(0, index) + replacement + id.slice(index + 1);
        expect(() => validateTaxpayerId(changed)).toThrow(Fault);
      }),
    );
  });
});
