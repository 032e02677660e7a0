// The public verification page (/verify) in a real browser (Debian's chromium through
// playwright-core): a person types the four fields from the invoice and reads the answer; the QR
// code's URL opens the same answer.
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api } from '../support/http.js';
import { openSigner } from '../../src/app/signing-keys.js';
import { checkCode } from '../../src/domain/signature.js';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

describe('the /verify page in chromium', () => {
  let opened: OpenedStore;
  let api: Api;
  let browser: Browser;
  let base: string;
  let invoice: { number: string; date: string; total: string; code: string };

  beforeAll(async () => {
    opened = await storesUnderTest[0]!.open();
    const signer = await openSigner(opened.store, { now: () => new Date() }, opened.dataDir);
    api = await startApi(opened.store, { signer, http: { documents: { publicUrl: 'http://127.0.0.1', verifyPerIpPerMinute: 1000 } } });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
    const view = body(await api.issue(api.a.keys.clerk, api.sampleInvoice()));
    invoice = { number: view.number, date: view.issued_at.slice(0, 10), total: view.total_with_tax, code: checkCode(view.digest) };
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await api.close();
    await opened.cleanup();
  });

  it('verifies an invoice typed into the form, Chinese first and English second', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/verify`);
    expect(await page.title()).toBe('发票查验 · Invoice verification');
    await page.fill('#number', invoice.number);
    await page.fill('#date', invoice.date);
    await page.fill('#total_with_tax', invoice.total);
    // Typed with spaces, as printed in groups of five.
    await page.fill('#check_code', invoice.code.replace(/(\d{5})(?=\d)/g, '$1 '));
    await page.click('button[type=submit]');
    await page.waitForSelector('#result');
    expect(await page.getAttribute('#result', 'data-result')).toBe('genuine');
    const text = await page.textContent('#result');
    expect(text).toContain('发票有效');
    expect(text).toContain('genuine');
    expect(text!.indexOf('发票有效')).toBeLessThan(text!.indexOf('genuine'));
    expect(text).toContain(api.a.record.name);
    // The stylesheet loaded under the page's CSP (a rule from it is in effect).
    expect(await page.$eval('main', (el) => getComputedStyle(el).maxWidth)).toBe('640px');
    await page.close();
  });

  it('answers 查无此票 for details that match no invoice, and explains a malformed field', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/verify`);
    await page.fill('#number', invoice.number);
    await page.fill('#date', invoice.date);
    await page.fill('#total_with_tax', '99999.00');
    await page.fill('#check_code', invoice.code);
    await page.click('button[type=submit]');
    await page.waitForSelector('#result');
    expect(await page.getAttribute('#result', 'data-result')).toBe('unknown');
    expect(await page.textContent('#result')).toContain('查无此票');

    await page.goto(`${base}/verify?number=123&date=2026-01-01&total_with_tax=1&check_code=1`);
    expect(await page.textContent('#result')).toContain('发票号码应为20位数字');
    await page.close();
  });

  it('opens the answer from the QR code URL', async () => {
    const page = await browser.newPage();
    const token = `${invoice.number}-${invoice.date.replaceAll('-', '')}-${invoice.total.replace('.', '')}-${invoice.code}`;
    await page.goto(`${base}/v/${token}`);
    expect(await page.getAttribute('#result', 'data-result')).toBe('genuine');
    // The form is filled in with what the code carried, so the person sees what was checked.
    expect(await page.inputValue('#number')).toBe(invoice.number);
    await page.close();
  });
});
