// Free text printed on an invoice. The tax platform refuses control characters and emoji, and
// so do we, naming the field. Full-width punctuation such as （） is normal in registered Chinese
// company names and is kept exactly as typed: altering a name would break 认证 matching later.
import { bilingual, Fault, faults } from './faults.js';

// With the u flag \p{Cs} matches only a lone surrogate: a proper pair is one code point.
const LONE_SURROGATE = /\p{Cs}/u;
const CONTROL = /[\p{Cc}\p{Cf}\p{Co}]/u;
const PICTOGRAPH = /[\p{Extended_Pictographic}\u{1F1E6}-\u{1F1FF}]/u;
// U+FFFD is what a decoder puts where bytes were not text in its encoding: a name that holds it
// was garbled on the way (GBK read as UTF-8), and would be issued garbled.
const REPLACEMENT = /\uFFFD/;

export type TextCheck = (value: string, field: string, maxLength: number, required?: boolean) => string;

export function checkText(value: string, field: string, maxLength: number, required = false): string {
  if (required && value.trim() === '') throw new Fault(faults.FIELD_MISSING, { field }, [{ field, issue: 'empty' }]);
  if (value !== value.trim()) throw invalid(field, '开头或结尾有空格', 'leading or trailing spaces');
  const replacement = REPLACEMENT.exec(value);
  if (replacement) {
    const at = position(value, replacement.index);
    throw invalid(
      field,
      `第 ${at} 个字符是替换字符 U+FFFD（�）：文本在以 UTF-8 读取其他编码（如 GBK）时已成乱码`,
      `replacement character U+FFFD (�) at position ${at}: the text was garbled by reading another encoding (e.g. GBK) as UTF-8`,
    );
  }
  const surrogate = LONE_SURROGATE.exec(value);
  if (surrogate) {
    const [at, code] = [position(value, surrogate.index), codePoint(surrogate[0])];
    throw invalid(field, `第 ${at} 个字符只有半个（孤立代理项 U+${code}）`, `half of a character (lone surrogate U+${code}) at position ${at}`);
  }
  const control = CONTROL.exec(value);
  if (control) {
    const [at, code] = [position(value, control.index), codePoint(control[0])];
    throw invalid(field, `第 ${at} 个字符是不可见的控制字符 U+${code}`, `invisible control character U+${code} at position ${at}`);
  }
  const emoji = PICTOGRAPH.exec(value);
  if (emoji) {
    const [at, code] = [position(value, emoji.index), codePoint(emoji[0])];
    throw invalid(field, `第 ${at} 个字符是表情符号或图形符号 U+${code}`, `emoji or symbol U+${code} at position ${at}`);
  }
  const length = [...value].length;
  if (length > maxLength) throw invalid(field, `共 ${length} 个字符，最多 ${maxLength} 个`, `${length} characters, at most ${maxLength}`);
  return value;
}

/**
 * The characters invoices can be printed with, as code points: what the invoice font has a glyph
 * for. The document adapter knows the font (src/documents/font.ts); the domain only asks.
 */
export interface PrintableCharacters {
  has(codePoint: number): boolean;
}

/** checkText for text printed on the invoice: it also refuses a character the font lacks, which would print as an empty box. */
export function printedTextCheck(printable: PrintableCharacters): TextCheck {
  return (value, field, maxLength, required) => {
    checkText(value, field, maxLength, required);
    let position = 0;
    for (const character of value) {
      position += 1;
      if (!printable.has(character.codePointAt(0)!)) {
        const params = { field, character, codePoint: `U+${codePoint(character)}`, position: String(position) };
        throw new Fault(faults.TEXT_NOT_PRINTABLE, params, [{ field, issue: `${character} (${params.codePoint}) at position ${position} is not in the invoice font` }]);
      }
    }
    return value;
  };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of bytes that must be UTF-8 (a request body, an invoice file). Bytes that are not are
 * refused with 1024 rather than decoded with U+FFFD in their place, which would issue the
 * garbled text. A leading byte-order mark is dropped, as JSON parsers may (RFC 8259): editors on
 * Windows write one when told to save as UTF-8, which is what the remedy asks for.
 */
export function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new Fault(faults.TEXT_NOT_UTF8, { source }, [{ field: source, issue: 'not UTF-8 text' }]);
  }
}

/** Position in characters, counted from 1 as a person counts them (an ideograph beyond U+FFFF is one). */
function position(value: string, index: number): number {
  return [...value.slice(0, index)].length + 1;
}

function codePoint(char: string): string {
  return (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}

function invalid(field: string, zh: string, en: string): Fault {
  return new Fault(faults.TEXT_INVALID, { field, reason: bilingual(zh, en) }, [{ field, issue: en }]);
}
