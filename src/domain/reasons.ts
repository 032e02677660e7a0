// Reasons given by more than one refusal, worded once in both languages.
import { bilingual } from './faults.js';

/** 发票号码: the 20-digit number of a 全电发票. */
export const INVOICE_NUMBER_DIGITS = bilingual('发票号码为 20 位数字', 'an invoice number has 20 digits');

/** A page cursor that no list of this API handed out. */
export const NOT_A_CURSOR = bilingual('不是本接口返回的分页游标，请使用上一页返回的 next_cursor', 'not a cursor this API returned');
