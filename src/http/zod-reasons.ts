// Why zod refused a value, in both languages. zod writes its messages in English only; a refusal
// quoted inside the Chinese message must be Chinese too, so the common kinds of issue are worded
// here, and a schema's own message is declared with its Chinese through `schemaMessage`.
import type { core } from 'zod';
import { bilingual, withOriginal, type Bilingual } from '../domain/faults.js';

const ownMessages = new Map<string, string>();

/**
 * A schema's own refusal message (`.regex(re, schemaMessage('发票号码为 20 位数字', 'an invoice
 * number has 20 digits'))`): zod carries the English, the Chinese is found again by it.
 */
export function schemaMessage(zh: string, en: string): string {
  ownMessages.set(en, zh);
  return en;
}

const TYPE_WORDS: Record<string, string> = {
  string: '文本', number: '数字', int: '整数', bigint: '整数', boolean: '布尔值（true 或 false）',
  array: '数组', object: '对象', date: '日期', null: 'null',
};

const SIZE_UNITS: Record<string, string> = { string: '个字符', array: '项', set: '项', file: '字节' };

export function zodReason(issue: core.$ZodIssue): Bilingual {
  const own = ownMessages.get(issue.message);
  if (own !== undefined) return bilingual(own, issue.message);
  switch (issue.code) {
    case 'invalid_type':
      return bilingual(`应为${TYPE_WORDS[issue.expected] ?? issue.expected}`, issue.message);
    case 'invalid_value':
      return bilingual(`应为以下之一：${issue.values.map((v) => JSON.stringify(v)).join('、')}`, issue.message);
    case 'invalid_format':
      return bilingual(issue.format === 'regex' && 'pattern' in issue ? `格式不符，应匹配 ${String(issue.pattern)}` : `格式不符（${issue.format}）`, issue.message);
    case 'too_big':
      return bilingual(sizeLimit(issue.origin, issue.maximum, '最多', '不能大于'), issue.message);
    case 'too_small':
      return bilingual(sizeLimit(issue.origin, issue.minimum, '至少', '不能小于'), issue.message);
    case 'not_multiple_of':
      return bilingual(`应为 ${String(issue.divisor)} 的整数倍`, issue.message);
    default:
      return withOriginal('值不符合要求', issue.message);
  }
}

function sizeLimit(origin: string, bound: number | bigint, countWord: string, valueWord: string): string {
  const unit = SIZE_UNITS[origin];
  return unit ? `${countWord} ${String(bound)} ${unit}` : `${valueWord} ${String(bound)}`;
}
