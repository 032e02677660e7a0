// The public verification page (发票查验): plain server-rendered HTML with a GET form, so it works
// in any browser without JavaScript, and the stylesheet beside it (the CSP allows no inline style).
// Chinese first, English second.
import type { VerifyAnswer } from '../../app/verify-invoice.js';
import type { Fault } from '../../domain/faults.js';
import { formatYuan } from '../../domain/money.js';

export interface PageQuery {
  number?: string;
  date?: string;
  total_with_tax?: string;
  check_code?: string;
}

const RESULT = {
  genuine: { zh: '查验结果：发票有效（真票）', en: 'Result: genuine — this invoice was issued by the platform and is valid.', tone: 'ok' },
  voided: { zh: '查验结果：该发票已作废', en: 'Result: voided — this invoice was issued but has been cancelled.', tone: 'warn' },
  reversed: { zh: '查验结果：该发票已红冲', en: 'Result: reversed — a red-letter invoice has cancelled this one.', tone: 'warn' },
  unknown: { zh: '查验结果：查无此票', en: 'Result: unknown — no invoice matches these details. Check every field, or treat the invoice as not genuine.', tone: 'bad' },
} as const;

export function verifyPage(query: PageQuery, outcome?: { answer?: VerifyAnswer; fault?: Fault; problem?: string }): string {
  const field = (name: keyof PageQuery, zh: string, en: string, placeholder: string, pattern: string) => `
      <label for="${name}">${zh}<span class="en">${en}</span></label>
      <input id="${name}" name="${name}" value="${esc(query[name] ?? '')}" placeholder="${placeholder}" pattern="${pattern}" required autocomplete="off">`;
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>发票查验 · Invoice verification</title>
<link rel="stylesheet" href="/verify.css">
</head>
<body>
<main>
  <h1>发票查验<span class="en">Invoice verification</span></h1>
  <p class="intro">输入发票上的号码、开票日期、价税合计和校验码，或扫描发票左上角的二维码。每张发票每天最多查验 5 次。<span class="en">Enter the number, date, total and check code printed on the invoice, or scan its QR code. Each invoice can be verified 5 times a day.</span></p>
  <form method="get" action="/verify" id="verify-form">${field('number', '发票号码', 'Invoice number', '20 位数字', '\\d{20}')}${field('date', '开票日期', 'Issue date', '2026-11-22', '\\d{4}-\\d{2}-\\d{2}')}${field('total_with_tax', '价税合计（元）', 'Total incl. tax (yuan)', '1130.00', '[¥￥]?\\d+(\\.\\d{1,2})?')}${field('check_code', '校验码', 'Check code', '20 位数字', '[\\d ]{20,24}')}
    <button type="submit">查验<span class="en">Verify</span></button>
  </form>
  ${outcome ? result(outcome) : ''}
</main>
</body>
</html>
`;
}

function result({ answer, fault, problem }: { answer?: VerifyAnswer; fault?: Fault; problem?: string }): string {
  if (problem) return `<section id="result" class="result bad" role="status"><p>${esc(problem)}</p></section>`;
  if (fault) {
    return `<section id="result" class="result bad" role="status" data-code="${fault.spec.code}"><p>${esc(fault.messageIn('zh'))}<span class="en">${esc(fault.message)} (${fault.spec.code})</span></p></section>`;
  }
  const a = answer!;
  const r = RESULT[a.result];
  const i = a.invoice;
  const rows = i
    ? `<table>
      <tr><th>发票号码 <span class="en">Number</span></th><td>${esc(i.number)}</td></tr>
      <tr><th>发票种类 <span class="en">Kind</span></th><td>${i.kind === 'special' ? '电子发票（增值税专用发票）' : '电子发票（普通发票）'}</td></tr>
      <tr><th>开票日期 <span class="en">Date</span></th><td>${esc(i.issueDate)}</td></tr>
      <tr><th>销售方 <span class="en">Seller</span></th><td>${esc(i.sellerName)}<br><small>${esc(i.sellerTaxId)}</small></td></tr>
      <tr><th>购买方 <span class="en">Buyer</span></th><td>${esc(i.buyerName)}<br><small>${esc(i.buyerTaxIdMasked)}</small></td></tr>
      <tr><th>金额 / 税额 <span class="en">Amount / tax</span></th><td>¥${formatYuan(i.totalAmount)} / ¥${formatYuan(i.totalTax)}</td></tr>
      <tr><th>价税合计 <span class="en">Total</span></th><td>¥${formatYuan(i.totalWithTax)}</td></tr>
      <tr><th>今日查验次数 <span class="en">Verified today</span></th><td>${i.verificationsToday} / 5</td></tr>
    </table>`
    : '';
  return `<section id="result" class="result ${r.tone}" role="status" data-result="${a.result}"><h2>${r.zh}<span class="en">${r.en}</span></h2>${rows}</section>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const verifyStylesheet = `
body { font-family: "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; background: #f6f3ef; color: #222; margin: 0; }
main { max-width: 640px; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-top: 4px solid #8a4b23; }
h1 { color: #8a4b23; margin: 0 0 .5rem; }
.en { display: block; font-size: .8em; color: #777; font-weight: normal; }
label { display: block; margin-top: .8rem; font-weight: bold; }
input { width: 100%; box-sizing: border-box; padding: .45rem; font-size: 1rem; border: 1px solid #bbb; }
button { margin-top: 1.2rem; padding: .5rem 1.6rem; font-size: 1rem; background: #8a4b23; color: #fff; border: 0; cursor: pointer; }
button .en { color: #f3e3d6; }
.result { margin-top: 1.5rem; padding: 1rem; border-left: 4px solid; }
.result.ok { border-color: #2e7d32; background: #eef7ee; }
.result.warn { border-color: #e6a100; background: #fff8e5; }
.result.bad { border-color: #c62828; background: #fdeeee; }
table { border-collapse: collapse; width: 100%; margin-top: .5rem; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #eee; vertical-align: top; }
th .en { display: inline; }
`;
