// The invoice PDF at the edges of what the API accepts, checked on the rendered page: the 单价
// column of a tax-inclusive invoice, the longest quantity allowed, and every buyer and
// seller field at its longest. Words and their boxes come from pdftotext, the frame's rules from
// a picture of the page (test/support/pdf-geometry.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, BUYER_TAX_ID, oneLine, sampleInvoice, startApi, type Api } from '../support/http.js';
import { cellAround, overlap, pdfRules, pdfWords, within, type Word } from '../support/pdf-geometry.js';

const FRAME_COLOUR = '#8a4b23'; // the brown of the form's rules

/** `length` characters taken in turn from `alphabet`. */
const mixed = (length: number, alphabet: string) => Array.from({ length }, (_, i) => [...alphabet][i % [...alphabet].length]).join('');

// Every party field at the most the API accepts (draft.ts for the buyer, merchants.ts for the
// seller), mixing CJK with wide Latin letters. Each field draws on characters no other text on
// the page has, so every extracted word can be told to its field; the phone has no run of five
// digits, so no 校验码 group can pass for a piece of it.
const buyer = {
  name: mixed(100, '鑫淼犇骉W'),
  tax_id: BUYER_TAX_ID,
  address: mixed(100, '龘靐齉爨M'),
  phone: '+86-(0868)-8686-8686-8686-8686',
  bank: mixed(100, '招商银深圳Q'),
  account: mixed(50, '储蓄卡G'),
  email: '',
};
const seller = {
  name: mixed(100, '上海甲乙科技H'),
  address: mixed(100, '浦东新区K'),
  phone: mixed(30, '总机转X'),
  bank: mixed(100, '工建农中N'),
  account: mixed(50, '结算存J'),
};
const partyFields = {
  buyer: { name: buyer.name, address: buyer.address, phone: buyer.phone, bank: buyer.bank, account: buyer.account },
  seller,
};

for (const kind of storesUnderTest) {
  describe(`invoice PDF layout at the limits on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let work: string;

    beforeAll(async () => {
      opened = await kind.open();
      work = mkdtempSync(join(tmpdir(), 'fapiao-pdf-layout-'));
      api = await startApi(opened.store, { merchantA: seller });
    });
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    async function issuedPdf(invoice: object, name: string): Promise<{ view: any; file: string }> {
      const view = body(await api.issue(api.a.keys.clerk, invoice));
      expect(view.number, JSON.stringify(view)).toMatch(/^\d{20}$/);
      const response = await api.get(api.a.keys.clerk, `/api/v1/invoices/${view.number}/pdf`);
      expect(response.statusCode).toBe(200);
      const file = join(work, `${name}.pdf`);
      writeFileSync(file, response.rawPayload);
      return { view, file };
    }

    const layoutText = (file: string) => execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });

    describe('the lines table', () => {
      const longQuantity = '123456789012.12345678'; // 12 digits and 8 decimals, the most allowed
      let inclusive: { view: any; file: string };

      beforeAll(async () => {
        inclusive = await issuedPdf(
          sampleInvoice({ prices_include_tax: true, lines: [oneLine('3', '33.33', '0.06'), oneLine(longQuantity, '0.01', '0.06')] }),
          'tax-inclusive',
        );
      });

      it('prints 单价 excluding tax beside 金额 on a tax-inclusive invoice: 金额 ÷ 数量 to 8 decimals', () => {
        // 3 × 33.33 = 99.99 with tax; 94.33 before tax, 5.66 tax; 94.33 ÷ 3 = 31.443333…
        expect(layoutText(inclusive.file)).toMatch(/ 3 +31\.44333333 +94\.33 +6% +5\.66\n/);
      });

      it('keeps the price as requested in the invoice itself', () => {
        expect(inclusive.view.prices_include_tax).toBe(true);
        expect(inclusive.view.lines[0]).toMatchObject({ quantity: '3', unit_price: '33.33', amount: '94.33', tax: '5.66' });
      });

      it('prints the price as entered on a tax-exclusive invoice', async () => {
        const exclusive = await issuedPdf(sampleInvoice({ lines: [oneLine('3', '33.333', '0.06')] }), 'tax-exclusive');
        expect(layoutText(exclusive.file)).toMatch(/ 3 +33\.333 +100\.00 +6% +6\.00\n/);
      });

      it('prints the longest quantity allowed on one line, as one number', () => {
        const { words } = pdfWords(inclusive.file);
        // Wrapped, it was two words such as "123456789012.1" and "234567".
        const quantity = words.filter((word) => word.text.length > 1 && longQuantity.includes(word.text));
        expect(quantity.map((word) => word.text)).toEqual([longQuantity]);
        const price = words.find((word) => word.text === '0.00943396')!; // 1164686688.79 ÷ 123456789012.12345678
        // Set smaller, on the same row as the price and left of it.
        expect(within(quantity[0]!, { ...price, xMin: 0 })).toBe(true);
        expect(quantity[0]!.xMax).toBeLessThan(price.xMin);
        expectNoOverlaps(words);
      });
    });

    describe('every buyer and seller field at its longest', () => {
      let file: string;
      let words: Word[];
      let pageSizes: Array<{ width: number; height: number }>;

      beforeAll(async () => {
        // Nine lines: the invoice refers to a 销货清单 (list of goods), which names both parties again.
        const lines = Array.from({ length: 9 }, () => oneLine('2', '100', '0.06'));
        ({ file } = await issuedPdf(sampleInvoice({ kind: 'special', remarks: '', buyer, lines }), 'longest-parties'));
        ({ words, pages: pageSizes } = pdfWords(file));
      });

      it('prints every character of every field, in order', () => {
        for (const [party, fields] of Object.entries(partyFields)) {
          for (const [name, text] of Object.entries(fields)) {
            expect(readField(wordsOf(words, 1, text)), `${party}.${name}`).toBe(text.replace(/\s/g, ''));
          }
        }
        expect(words.filter((word) => word.page === 1 && word.text === buyer.tax_id)).toHaveLength(1);
        expect(words.filter((word) => word.page === 1 && word.text === api.a.record.taxId)).toHaveLength(1);
      });

      it('keeps each party inside its own block of the frame', () => {
        const rules = pdfRules(file, 1, FRAME_COLOUR, work);
        for (const [party, fields] of Object.entries(partyFields)) {
          const [first] = wordsOf(words, 1, fields.name);
          const block = cellAround(rules, (first!.xMin + first!.xMax) / 2, (first!.yMin + first!.yMax) / 2);
          for (const text of Object.values(fields)) {
            for (const word of wordsOf(words, 1, text)) expect(within(word, block, 1), `${party}: ${word.text}`).toBe(true);
          }
        }
      });

      it('names both parties whole above the 销货清单, within its frame', () => {
        const rules = pdfRules(file, 2, FRAME_COLOUR, work);
        const frame = {
          xMin: Math.min(...rules.vertical.map((rule) => rule.at)),
          xMax: Math.max(...rules.vertical.map((rule) => rule.at)),
          yMin: 0,
          yMax: Math.min(...rules.horizontal.map((rule) => rule.at)),
        };
        for (const name of [buyer.name, seller.name]) {
          const nameWords = wordsOf(words, 2, name);
          expect(readField(nameWords)).toBe(name);
          for (const word of nameWords) expect(within(word, frame, 1), word.text).toBe(true);
        }
      });

      it('has no two words overlapping and nothing off the page', () => {
        expectNoOverlaps(words);
        for (const word of words) expect(within(word, { xMin: 0, yMin: 0, xMax: pageSizes[word.page - 1]!.width, yMax: pageSizes[word.page - 1]!.height }), word.text).toBe(true);
      });
    });
  });
}

/** The words on `page` that are pieces of `text` and of no other party field. */
function wordsOf(words: Word[], page: number, text: string): Word[] {
  const others = Object.values(partyFields).flatMap((fields) => Object.values(fields)).filter((other) => other !== text);
  return words.filter((word) => word.page === page && text.includes(word.text) && !others.some((other) => other.includes(word.text)));
}

/** The words of one field in reading order, joined: what a person reads, line by line. */
function readField(fieldWords: Word[]): string {
  return [...fieldWords].sort((a, b) => a.yMin - b.yMin || a.xMin - b.xMin).map((word) => word.text).join('');
}

function expectNoOverlaps(words: Word[]): void {
  const clashes: string[] = [];
  words.forEach((a, i) => {
    for (const b of words.slice(i + 1)) if (a.page === b.page && overlap(a, b)) clashes.push(`${a.text} / ${b.text}`);
  });
  expect(clashes).toEqual([]);
}
