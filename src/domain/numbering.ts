// 全电发票号码: 20 digits = 2-digit year + 2-digit region (province) code + 1 channel digit
// + 15-digit sequence. A series is (merchant, year); its sequence is gap-free.
import { bilingual, Fault, faults } from './faults.js';

export const MAX_SEQUENCE = 999_999_999_999_999;
/** The channel digit this platform issues under (1 = electronic invoicing service platform). */
export const PLATFORM_CHANNEL = '1';

export function validateRegionCode(code: string): string {
  if (!/^\d{2}$/.test(code)) throw new Fault(faults.REGION_CODE_INVALID, { reason: bilingual(`“${code}”不是两位数字`, `"${code}" is not two digits`) });
  const value = Number(code);
  if (value < 11 || value > 82) throw new Fault(faults.REGION_CODE_INVALID, { reason: bilingual(`${code} 不是省级行政区划代码（11–82）`, `${code} is not a province code (11–82)`) });
  return code;
}

export function invoiceNumber(year: number, regionCode: string, sequence: number): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence > MAX_SEQUENCE) {
    throw new RangeError(`sequence ${sequence} outside 1..${MAX_SEQUENCE}`);
  }
  const yy = String(year % 100).padStart(2, '0');
  return `${yy}${regionCode}${PLATFORM_CHANNEL}${String(sequence).padStart(15, '0')}`;
}

export function isInvoiceNumber(text: string): boolean {
  return /^\d{20}$/.test(text);
}
