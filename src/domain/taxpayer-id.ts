import { bilingual, Fault, faults, type Bilingual } from './faults.js';

/*
 * Taxpayer IDs (纳税人识别号) a buyer may give:
 * - uscc: the 18-character 统一社会信用代码 (GB 32100-2015), fully checked. An 18-character ID is
 *   always read as a USCC — the old 18-character 税务登记号 (15-digit ID card + 3) cannot be told
 *   from a mistyped USCC, and USCCs replaced it, so it is not accepted.
 * - legacy15: 6-digit administrative division + 9-character organisation code (old 税务登记证号).
 * - legacy17: 15-digit ID card number + 2 digits (individual businesses), digits only.
 * - legacy20: 18-digit ID card number (last one may be X) + 2 digits.
 * The legacy forms carry no check character of their own, so only their shape is checked.
 */
export type TaxpayerIdKind = 'uscc' | 'legacy15' | 'legacy17' | 'legacy20';
export type TaxpayerId = { kind: TaxpayerIdKind; normalized: string };

// GB 32100-2015 leaves out I, O, S, V and Z, which are easily misread as 1, 0, 5, U and 2.
const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28] as const;
// GB 11714-1997 values letters A=10 … Z=35 over the full alphabet, unlike the USCC check.
const ORGANISATION_CODE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const ORGANISATION_CODE_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2] as const;

const LENGTHS_EXPECTED = bilingual('应为 18 位（统一社会信用代码），或 15、17、20 位（旧税务登记证号）', 'expected 18 (统一社会信用代码), or 15, 17 or 20 (legacy 税务登记证号)');

export function validateTaxpayerId(id: string): TaxpayerId {
  const chars = [...id];
  checkCharacters(chars);
  switch (chars.length) {
    case 18:
      checkUscc(chars);
      return { kind: 'uscc', normalized: id };
    case 15:
      checkDigits(chars, 0, 6, bilingual('15 位旧税务登记证号以 6 位行政区划代码开头', 'a 15-character legacy ID starts with a 6-digit administrative division code'));
      return { kind: 'legacy15', normalized: id };
    case 17:
      checkDigits(
        chars, 0, 17,
        bilingual('17 位旧税务登记证号由 15 位身份证号码加 2 位数字组成；统一社会信用代码为 18 位', 'a 17-character legacy ID is a 15-digit ID card number and 2 digits; a 统一社会信用代码 has 18 characters'),
      );
      return { kind: 'legacy17', normalized: id };
    case 20:
      checkLegacy20(chars);
      return { kind: 'legacy20', normalized: id };
    default:
      throw invalid(`长度为 ${chars.length} 位，${LENGTHS_EXPECTED.zh}`, `length ${chars.length}; ${LENGTHS_EXPECTED.en}`);
  }
}

/** The 18th character of a USCC for its first 17 (GB 32100-2015, mod 31). */
export function usccCheckCharacter(first17: string): string {
  const values = valuesIn(first17, USCC_ALPHABET, 17);
  const sum = values.reduce((total, value, index) => total + value * (USCC_WEIGHTS[index] ?? 0), 0);
  return charAt(USCC_ALPHABET, (31 - (sum % 31)) % 31);
}

/** The 9th character of an organisation code (positions 9–17 of a USCC) for its first 8 (GB 11714-1997, mod 11). */
export function organisationCodeCheckCharacter(first8: string): string {
  const values = valuesIn(first8, ORGANISATION_CODE_ALPHABET, 8);
  const sum = values.reduce((total, value, index) => total + value * (ORGANISATION_CODE_WEIGHTS[index] ?? 0), 0);
  const check = 11 - (sum % 11);
  if (check === 10) return 'X';
  if (check === 11) return '0';
  return String(check);
}

function checkCharacters(chars: string[]): void {
  if (chars.length === 0) throw invalid(`为空，${LENGTHS_EXPECTED.zh}`, `empty; ${LENGTHS_EXPECTED.en}`);
  chars.forEach((char, index) => {
    const position = index + 1;
    if (/\s/u.test(char)) throw invalid(`第 ${position} 位是空白字符，不允许`, `whitespace at position ${position} is not allowed`);
    if (/[a-z]/.test(char)) {
      throw invalid(
        `第 ${position} 位是小写字母“${char}”，字母必须大写（“${char.toUpperCase()}”）`,
        `lower-case '${char}' at position ${position}; letters must be upper case ('${char.toUpperCase()}')`,
      );
    }
    if (!/[0-9A-Z]/.test(char)) throw invalid(`第 ${position} 位的字符“${char}”不允许`, `character '${char}' at position ${position} is not allowed`);
  });
}

function checkUscc(chars: string[]): void {
  chars.forEach((char, index) => {
    if (!USCC_ALPHABET.includes(char)) {
      throw invalid(
        `第 ${index + 1} 位的字符“${char}”不允许（统一社会信用代码中不会出现 I、O、S、V、Z）`,
        `character '${char}' at position ${index + 1} is not allowed (I, O, S, V and Z never occur in a 统一社会信用代码)`,
      );
    }
  });
  checkDigits(chars, 2, 8, bilingual('第 3–8 位是行政区划代码', 'positions 3–8 are the administrative division code'));
  checkCheckCharacter(chars, 17, organisationCodeCheckCharacter(chars.slice(8, 16).join('')), bilingual('组织机构代码校验码', 'organisation code check character'));
  checkCheckCharacter(chars, 18, usccCheckCharacter(chars.slice(0, 17).join('')), bilingual('校验码', 'check character'));
}

function checkLegacy20(chars: string[]): void {
  const why = bilingual('20 位旧税务登记证号由 18 位身份证号码加 2 位数字组成', 'a 20-character legacy ID is an 18-digit ID card number and 2 digits');
  checkDigits(chars, 0, 17, why);
  if (!/[0-9X]/.test(chars[17] ?? '')) {
    throw invalid(
      `第 18 位的字符“${chars[17]}”不允许：${why.zh}（身份证号码末位可以是 X）`,
      `character '${chars[17]}' at position 18 is not allowed: ${why.en} (the ID card number may end in X)`,
    );
  }
  checkDigits(chars, 18, 20, why);
}

function checkDigits(chars: string[], from: number, to: number, why: Bilingual): void {
  for (let index = from; index < to; index++) {
    const char = chars[index] ?? '';
    if (!/[0-9]/.test(char)) throw invalid(`第 ${index + 1} 位的字符“${char}”不允许：${why.zh}`, `character '${char}' at position ${index + 1} is not allowed: ${why.en}`);
  }
}

function checkCheckCharacter(chars: string[], position: number, expected: string, what: Bilingual): void {
  const found = chars[position - 1];
  if (found !== expected) {
    throw invalid(`第 ${position} 位${what.zh}应为“${expected}”，实际为“${found}”`, `${what.en} at position ${position} should be '${expected}', found '${found}'`);
  }
}

function valuesIn(text: string, alphabet: string, length: number): number[] {
  const values = [...text].map((char) => alphabet.indexOf(char));
  if (values.length !== length || values.some((value) => value < 0)) {
    throw new RangeError(`expected ${length} characters from ${alphabet}, got '${text}'`);
  }
  return values;
}

function charAt(alphabet: string, index: number): string {
  const char = alphabet[index];
  if (char === undefined) throw new RangeError(`no character at ${index}`);
  return char;
}

function invalid(zh: string, en: string): Fault {
  return new Fault(faults.BUYER_TAX_ID_INVALID, { reason: bilingual(zh, en) });
}
