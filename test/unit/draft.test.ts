import { describe, expect, it } from 'vitest';
import { draftInvoice, type InvoiceRequest, type LineRequest } from '../../src/domain/draft.js';
import { checkText, decodeUtf8, type PrintableCharacters } from '../../src/domain/text.js';
import { gbkBytes } from '../support/gbk.js';
import { parseCalendarDate, shanghaiDate, shanghaiMonth, shanghaiTimestamp } from '../../src/domain/time.js';
import type { Fault } from '../../src/domain/faults.js';

const request = (overrides: Partial<InvoiceRequest> = {}): InvoiceRequest => ({
  kind: 'normal',
  prices_include_tax: false,
  remarks: '',
  buyer: { name: '某某（北京）科技有限公司', tax_id: '91350100M000100Y43', address: '', phone: '010-12345678', bank: '', account: '', email: 'ap@example.com' },
  lines: [
    { name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: '1000.00', tax_rate: '0.06' },
    { name: '*计算机配套产品*鼠标', tax_code: '1090511030000000000', spec: 'M1', unit: '个', quantity: '3', unit_price: '33.33', tax_rate: '0.13' },
  ],
  ...overrides,
});

/** A font with every character, for the rules that are not about the font. */
const anyCharacter: PrintableCharacters = { has: () => true };

const caught = (work: () => unknown): Fault => {
  try {
    work();
  } catch (error) {
    return error as Fault;
  }
  throw new Error('expected a refusal');
};

const refusal = (work: () => unknown) => {
  const fault = caught(work);
  return { code: fault.spec.code, fields: fault.details.map((d) => d.field) };
};

describe('drafting an invoice', () => {
  it('prices every line and totals them in fen', () => {
    const draft = draftInvoice(request(), anyCharacter);
    expect(draft.lines.map((l) => [l.amount, l.tax])).toEqual([[100000n, 6000n], [9999n, 1300n]]);
    expect([draft.totalAmount, draft.totalTax, draft.totalWithTax]).toEqual([109999n, 7300n, 117299n]);
    expect(draft.lines[0]).toMatchObject({ quantity: '1', unitPrice: '1000', taxRate: '0.06' });
  });

  it('keeps full-width punctuation in a registered name exactly as typed', () => {
    expect(draftInvoice(request(), anyCharacter).buyer.name).toBe('某某（北京）科技有限公司');
  });

  it('lets an ordinary invoice go to a person without a taxpayer ID, but not a special one', () => {
    const person = { ...request().buyer, name: '张三', tax_id: '' };
    expect(draftInvoice(request({ buyer: person }), anyCharacter).buyer.taxId).toBe('');
    expect(refusal(() => draftInvoice(request({ kind: 'special', buyer: person }), anyCharacter))).toEqual({ code: 1005, fields: ['buyer.tax_id'] });
  });

  it.each([
    ['a wrong USCC check character', { buyer: { ...request().buyer, tax_id: '91350100M000100Y44' } }, 1001, 'buyer.tax_id'],
    ['no lines', { lines: [] }, 1006, 'lines'],
    ['a 15-digit tax code', { lines: [{ ...request().lines[0]!, tax_code: '304020100000000' }] }, 1003, 'lines[0].tax_code'],
    ['an emoji in an item name', { lines: [{ ...request().lines[0]!, name: '蛋糕🎂' }] }, 1014, 'lines[0].name'],
    ['a zero-width space in the buyer name', { buyer: { ...request().buyer, name: '某某\u200b公司' } }, 1014, 'buyer.name'],
    ['a bad e-mail', { buyer: { ...request().buyer, email: 'not-mail' } }, 1003, 'buyer.email'],
    ['an empty buyer name', { buyer: { ...request().buyer, name: '' } }, 1005, 'buyer.name'],
  ])('refuses %s', (_what, overrides, code, field) => {
    const result = refusal(() => draftInvoice(request(overrides as Partial<InvoiceRequest>), anyCharacter));
    expect(result.code).toBe(code);
    expect(result.fields).toContain(field);
  });

  it('refuses more than 2,000 lines with 1007', () => {
    const lines = Array.from({ length: 2001 }, () => request().lines[0]!);
    expect(refusal(() => draftInvoice(request({ lines }), anyCharacter)).code).toBe(1007);
  });
});

describe('characters the invoice font lacks (they would print as empty boxes)', () => {
  const font: PrintableCharacters = { has: (codePoint) => codePoint !== 0x20000 }; // lacks 𠀀
  const buyer = request().buyer;
  const [line0, line1] = request().lines as [LineRequest, LineRequest];

  it.each([
    ['buyer.name', { buyer: { ...buyer, name: '刘䶮𬌗𠀀龘㐀商行' } }, 4],
    ['buyer.address', { buyer: { ...buyer, address: '北京市𠀀路1号' } }, 4],
    ['buyer.bank', { buyer: { ...buyer, bank: '𠀀银行' } }, 1],
    ['buyer.account', { buyer: { ...buyer, account: '6222𠀀' } }, 5],
    ['lines[1].name', { lines: [line0, { ...line1, name: '*计算机配套产品*𠀀' }] }, 10],
    ['lines[0].spec', { lines: [{ ...line0, spec: 'A𠀀' }, line1] }, 2],
    ['lines[0].unit', { lines: [{ ...line0, unit: '𠀀' }, line1] }, 1],
    ['remarks', { remarks: '合同𠀀' }, 3],
  ])('refuses one in %s, naming the field, the character and its code point', (field, overrides, position) => {
    const fault = caught(() => draftInvoice(request(overrides), font));
    expect(fault.spec.code).toBe(1025);
    expect(fault.message).toBe(`Field ${field}: the character 𠀀 (U+20000) at position ${position} cannot be printed on the invoice`);
    expect(fault.details).toEqual([{ field, issue: `𠀀 (U+20000) at position ${position} is not in the invoice font` }]);
  });

  it('takes the same text without it, and an e-mail address (never printed) with it', () => {
    expect(draftInvoice(request({ buyer: { ...buyer, name: '刘䶮𬌗龘㐀商行', email: '𠀀@example.cn' } }), font).buyer.name).toBe('刘䶮𬌗龘㐀商行');
  });

  it('reports what the other text rules find first, e.g. a control character', () => {
    expect(caught(() => draftInvoice(request({ remarks: '𠀀\u0007' }), font)).spec.code).toBe(1014);
  });
});

describe('invoice text', () => {
  it.each([
    ['tab', 'a\tb'],
    ['newline', 'a\nb'],
    ['NUL', 'a\u0000b'],
    ['lone surrogate', 'a\ud800b'],
    ['flag emoji', '🇨🇳'],
    ['trailing space', 'abc '],
  ])('refuses a %s', (_what, value) => {
    expect(refusal(() => checkText(value, 'f', 100)).code).toBe(1014);
  });

  it.each([
    ['a replacement character, left where GBK was read as UTF-8', '深圳\ufffd\ufffd公司', /^replacement character U\+FFFD \(�\) at position 3: .*another encoding/],
    ['a lone high surrogate', '𬌗a\ud800b', /^half of a character \(lone surrogate U\+D800\) at position 3$/],
    ['a lone low surrogate', '\udc00', /^half of a character \(lone surrogate U\+DC00\) at position 1$/],
  ])('refuses %s, saying what it is and where, naming the field', (_what, value, reason) => {
    const fault = caught(() => checkText(value, 'buyer.name', 100));
    expect(fault.spec.code).toBe(1014);
    expect(fault.details).toEqual([{ field: 'buyer.name', issue: expect.stringMatching(reason) }]);
  });

  it('keeps a character beyond U+FFFF (a surrogate pair) and counts it as one', () => {
    expect(checkText('刘䶮𬌗', 'f', 3)).toBe('刘䶮𬌗');
    expect(caught(() => checkText('𬌗\u0007', 'f', 10)).details[0]!.issue).toBe('invisible control character U+0007 at position 2');
  });

  it('counts characters, not UTF-16 units, against the limit', () => {
    expect(checkText('发'.repeat(100), 'f', 100)).toHaveLength(100);
    expect(refusal(() => checkText('发'.repeat(101), 'f', 100)).code).toBe(1014);
  });
});

describe('bytes that must be UTF-8', () => {
  it('decodes UTF-8 and drops a leading byte-order mark', () => {
    expect(decodeUtf8(Buffer.from('{"name":"购买方"}'), 'body')).toBe('{"name":"购买方"}');
    expect(decodeUtf8(Buffer.from('\ufeff{}'), 'body')).toBe('{}');
  });

  it.each([
    ['GBK', gbkBytes('{"name":"购买方有限公司"}')],
    ['a character cut short', Buffer.from('购', 'utf8').subarray(0, 2)],
    ['an encoded surrogate (CESU-8)', Buffer.from([0xed, 0xa0, 0x80])],
    ['Latin-1', Buffer.from('café', 'latin1')],
  ])('refuses %s with 1024 naming the source, never with U+FFFD in its place', (_what, bytes) => {
    const fault = caught(() => decodeUtf8(bytes, 'invoice.json'));
    expect([fault.spec.code, fault.spec.http, fault.message]).toEqual([1024, 400, 'invoice.json is not UTF-8 text']);
    expect(fault.details).toEqual([{ field: 'invoice.json', issue: 'not UTF-8 text' }]);
  });
});

describe('Asia/Shanghai dates', () => {
  it('writes instants in Shanghai local time whatever the server zone', () => {
    const instant = new Date('2026-03-31T16:30:00.123Z');
    expect(shanghaiTimestamp(instant)).toBe('2026-04-01T00:30:00.123+08:00');
    expect(shanghaiDate(instant)).toBe('2026-04-01');
    expect(shanghaiMonth(instant)).toBe('2026-04');
  });

  it.each(['2026-02-29', '2026-13-01', '2026-1-01', '20260101', ''])('refuses %s as a calendar date', (text) => {
    expect(parseCalendarDate(text)).toBeUndefined();
  });

  it('accepts real dates, leap days included', () => {
    expect(parseCalendarDate('2028-02-29')).toBe('2028-02-29');
  });
});
