// Free text printed on an invoice. The tax platform refuses control characters and emoji, and
// so do we, naming the field. Full-width punctuation such as （） is normal in registered Chinese
// company names and is kept exactly as typed: altering a name would break 认证 matching later.
import { Fault, faults } from './faults.js';

const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const PICTOGRAPH = /[\p{Extended_Pictographic}\u{1F1E6}-\u{1F1FF}]/u;

export function checkText(value: string, field: string, maxLength: number, required = false): string {
  if (required && value.trim() === '') throw new Fault(faults.FIELD_MISSING, { field }, [{ field, issue: 'empty' }]);
  if (value !== value.trim()) throw invalid(field, 'leading or trailing spaces');
  const control = CONTROL.exec(value);
  if (control) throw invalid(field, `invisible control character U+${codePoint(control[0])} at position ${control.index + 1}`);
  const emoji = PICTOGRAPH.exec(value);
  if (emoji) throw invalid(field, `emoji or symbol U+${codePoint(emoji[0])} at position ${emoji.index + 1}`);
  const length = [...value].length;
  if (length > maxLength) throw invalid(field, `${length} characters, at most ${maxLength}`);
  return value;
}

function codePoint(char: string): string {
  return (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}

function invalid(field: string, reason: string): Fault {
  return new Fault(faults.TEXT_INVALID, { field, reason }, [{ field, issue: reason }]);
}
