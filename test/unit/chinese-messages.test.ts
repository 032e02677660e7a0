// The Chinese message of a fault is Chinese all through: a reason, a state or a kind filled into it
// comes in both languages (FaultParams makes the compiler insist), and what only exists in English
// (a library's message, an errno, the tax service's answer) follows a Chinese description as 原文.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Fault, faults, proseParams, withOriginal } from '../../src/domain/faults.js';
import { parseYuan, assertInvoiceRange } from '../../src/domain/money.js';
import { checkLineTolerance, parseQuantity, parseTaxRate, parseUnitPrice, priceInvoiceLines } from '../../src/domain/tax.js';
import { validateTaxpayerId } from '../../src/domain/taxpayer-id.js';
import { checkText } from '../../src/domain/text.js';
import { validateRegionCode } from '../../src/domain/numbering.js';
import { nextStatus } from '../../src/domain/invoice-state.js';
import { refuseIssue } from '../../src/domain/contingency.js';
import { webhookUrlProblem } from '../../src/documents/webhooks.js';
import { directoryPathProblem } from '../../src/documents/printers/directory.js';
import { zodValidatorCompiler, type RequestRejected } from '../../src/http/errors.js';
import { englishRun } from '../support/chinese.js';
import { faultOf } from '../support/faults.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function refusalOf(schema: z.ZodType, data: unknown, part = 'body'): Fault {
  const result = zodValidatorCompiler({ schema, method: 'POST', url: '/test', httpPart: part })(data) as { error?: RequestRejected };
  if (!result.error) throw new Error('expected a refusal');
  return result.error.fault;
}

const line = (quantity: string, unit_price: string, tax_rate = '0.13') => ({ quantity, unit_price, tax_rate });
const checked = (amount: bigint, tax: bigint, rate: string, quantity = '1', unitPrice = '100') => ({
  quantity: parseQuantity(quantity, 'q'), unitPrice: parseUnitPrice(unitPrice, 'p'), rate: parseTaxRate(rate, 'r'), pricesIncludeTax: false, amount, tax,
});
const Body = z.object({ name: z.string().max(5), count: z.number().int().min(1), kind: z.enum(['normal', 'special']), date: z.string().regex(/^\d{4}$/) }).strict();

/** Faults as the program raises them, one for each family of reason. */
const raised: Array<[string, () => Fault]> = [
  ...['', ' 1.00', '1e3', '+1.00', '1,000.00', '1234567890123456', '1.234'].map((text): [string, () => Fault] => [`amount "${text}"`, () => faultOf(() => parseYuan(text, 'total'))]),
  ['amount out of range', () => faultOf(() => assertInvoiceRange(10_000_000_000_000n, 'lines'))],
  ...['abc', '1.123456789', '0', '1000000000001'].map((text): [string, () => Fault] => [`quantity "${text}"`, () => faultOf(() => parseQuantity(text, 'lines[0].quantity'))]),
  ['unit price 0', () => faultOf(() => parseUnitPrice('0', 'lines[0].unit_price'))],
  ['no lines', () => faultOf(() => priceInvoiceLines([], false))],
  ['line rounds to zero', () => faultOf(() => priceInvoiceLines([line('0.001', '1')], false))],
  ['amount tolerance', () => faultOf(() => checkLineTolerance(checked(10002n, 1300n, '0.13'), 'lines[0]'))],
  ['tax tolerance', () => faultOf(() => checkLineTolerance(checked(10000n, 1307n, '0.13'), 'lines[0]'))],
  ['tax on an exempt line', () => faultOf(() => checkLineTolerance(checked(10000n, 1n, 'exempt'), 'lines[0]'))],
  ...['', '91350100M000100Y4', '91350100m000100Y43', '91350100M000100Y4 ', '9135010OM000100Y43', '91350100M000100Y44', '1234567890123456A', '1234567890123456A890', '123456789012345678901'].map(
    (id): [string, () => Fault] => [`taxpayer ID "${id}"`, () => faultOf(() => validateTaxpayerId(id))],
  ),
  ...[' x', 'a\uFFFDb', 'a\u0007b', 'a😀b', '\uD800', 'x'.repeat(11)].map((text): [string, () => Fault] => [`text ${JSON.stringify(text)}`, () => faultOf(() => checkText(text, 'buyer.name', 10))]),
  ['region code', () => faultOf(() => validateRegionCode('99'))],
  ['state conflict', () => faultOf(() => nextStatus({ number: '26441000000000000001', status: 'voided' }, 'void'))],
  ['offline hours', () => refuseIssue({ kind: 'special', maxOfflineHours: 72, maxOfflineAmountFen: 100n }, { oldestAt: '2026-03-01T00:00:00.000+08:00', preTaxFen: 0n, count: 1 }, 1n, new Date('2026-03-10T00:00:00+08:00'))!],
  ['request body field', () => refusalOf(Body, { name: 'toolong', count: 1, kind: 'normal', date: '2026' })],
  ['wrong type', () => refusalOf(Body, { name: 'a', count: 'one', kind: 'normal', date: '2026' })],
  ['too small', () => refusalOf(Body, { name: 'a', count: 0, kind: 'normal', date: '2026' })],
  ['not an option', () => refusalOf(Body, { name: 'a', count: 1, kind: 'other', date: '2026' })],
  ['pattern', () => refusalOf(Body, { name: 'a', count: 1, kind: 'normal', date: 'x' }, 'querystring')],
  ['NUL', () => refusalOf(Body, { name: 'a\u0000' })],
  ...['javascript:alert(1)', '/relative', 'https://u:p@example.cn/', 'https://example.cn/#x', 'http://169.254.169.254/'].map(
    (url): [string, () => Fault] => [`webhook ${url}`, () => new Fault(faults.WEBHOOK_URL_INVALID, { reason: webhookUrlProblem(url)! })],
  ),
  ...['relative/dir', '/a/../b'].map((path): [string, () => Fault] => [`hot folder ${path}`, () => new Fault(faults.PRINTER_TARGET_INVALID, { reason: directoryPathProblem(path)! })]),
  ['a library message', () => new Fault(faults.REQUEST_MALFORMED, { reason: withOriginal('JSON 语法错误', 'Unexpected token } in JSON at position 12') })],
];

describe('Chinese fault messages carry no English reasons', () => {
  it.each(Object.entries(faults))('the catalogue entry %s is Chinese in its message and remedy', (_name, spec) => {
    for (const text of [spec.zh, spec.remedy]) expect(englishRun(text.replace(/\{\w+\}/g, '')), text).toBeUndefined();
  });

  it.each(raised)('%s: the Chinese message is Chinese and the English one English', (_what, raise) => {
    const fault = raise();
    const zh = fault.messageIn('zh');
    expect(englishRun(zh), zh).toBeUndefined();
    expect(zh).toMatch(/[\u4e00-\u9fff]/);
    expect(zh).not.toMatch(/\{[A-Za-z]\w*\}/);
    expect(fault.messageIn('en')).not.toMatch(/[，。：；（）]/); // a term such as 统一社会信用代码 may be named, no Chinese sentence
  });

  it('keeps the original words of a library in both languages', () => {
    const fault = new Fault(faults.REQUEST_MALFORMED, { reason: withOriginal('JSON 语法错误', 'Unexpected end of JSON input') });
    expect(fault.messageIn('zh')).toBe('请求体不是有效的 JSON：JSON 语法错误（原文：Unexpected end of JSON input）');
    expect(fault.messageIn('en')).toBe('The request body is not valid JSON: Unexpected end of JSON input');
  });

  it('takes prose parameters only in both languages (the types refuse a bare string)', () => {
    // @ts-expect-error: a reason must be Bilingual, so an English-only one cannot reach the Chinese message
    const params: ConstructorParameters<typeof Fault>[1] = { reason: 'use next_cursor from the previous page' };
    expect(params).toBeDefined();
    expect(proseParams).toEqual(expect.arrayContaining(['reason', 'resolution', 'kind', 'state']));
  });
});

/** Every `bilingual('…', '…')` and `withOriginal('…', …)` in the source, with its Chinese text (interpolations removed). */
function chineseLiterals(): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const source = readFileSync(path, 'utf8');
        for (const match of source.matchAll(/\b(?:bilingual|withOriginal)\(\s*(['`])((?:\\.|(?!\1)[^\\])*)\1/g)) {
          found.push([`${path.slice(SRC.length + 1)}: ${match[2]!.slice(0, 40)}`, match[2]!.replace(/\$\{[^}]*\}/g, '')]);
        }
      }
    }
  };
  walk(SRC);
  return found;
}

describe('every Chinese reason written in the source', () => {
  const literals = chineseLiterals();

  it('finds the reasons (the scan itself works)', () => {
    expect(literals.length).toBeGreaterThan(100);
  });

  it.each(literals)('%s', (_where, zh) => {
    expect(englishRun(zh), zh).toBeUndefined();
    expect(zh).toMatch(/[\u4e00-\u9fff]/);
  });
});
