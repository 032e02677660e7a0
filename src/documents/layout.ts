// The page of an electronic invoice (电子发票), drawn after the official layout of the 全面数字化
// 电子发票: QR code top left, title with its double rule in the middle, number and date top right;
// one frame holding the buyer and seller blocks, the lines table, 合计, 价税合计 in capitals and
// figures, and 备注; the issuer under the frame. More than eight lines go to a 销货清单 (list of
// goods) on the following pages, as the official software does.
import { amountInWords } from '../domain/amount-in-words.js';
import type { InvoiceContent, InvoiceLine, Party } from '../domain/invoice.js';
import { formatYuan } from '../domain/money.js';
import { printedCheckCode } from '../domain/signature.js';
import { unitPriceExcludingTax } from '../domain/tax.js';
import { darkRuns, qrMatrix } from './qr.js';

export type Doc = PDFKit.PDFDocument;

export interface PageFacts {
  invoice: InvoiceContent;
  /** The URL in the QR code (public verification). */
  verifyUrl: string;
  /** 校验码, printed under the date. */
  checkCode: string;
}

export const PAGE = { width: 841.89, height: 595.28 }; // A4 landscape, in points
const INK = '#000000';
const FRAME = '#8a4b23'; // the brown of the official form's rules and labels
const LEFT = 40;
const RIGHT = PAGE.width - 40;
const WIDTH = RIGHT - LEFT;
export const LINES_ON_FIRST_PAGE = 8;
const FIRST_PAGE_TABLE_HEIGHT = 200;
const ROW_HEIGHT = 18;
const CELL_FONT = 9;
const LABEL_FONT = 9;
// The smallest print that stays legible on paper: a value too long for its place is set smaller,
// down to this size, and then wrapped at it.
const MIN_TEXT_SIZE = 6.5;
const WRAPPED_LINE_GAP = -2;
// The buyer and seller blocks: their height unless long details need more, and the room around their fields.
const PARTY_WIDTH = WIDTH / 2;
const MIN_PARTIES_HEIGHT = 78;
const PARTY_PADDING_TOP = 8;
const PARTY_PADDING_BOTTOM = 6;
const FIELD_SPACING = 2;

const TITLES = { normal: '电子发票（普通发票）', special: '电子发票（增值税专用发票）' } as const;

// Lines table columns: label, width, alignment of the values, and whether they hold figures
// (a figure is never wrapped: its two halves would read as two numbers).
const COLUMNS = [
  { label: '项目名称', width: 190, align: 'left', figures: false },
  { label: '规格型号', width: 80, align: 'left', figures: false },
  { label: '单 位', width: 44, align: 'center', figures: false },
  { label: '数 量', width: 76, align: 'right', figures: true },
  { label: '单 价', width: 86, align: 'right', figures: true },
  { label: '金 额', width: 92, align: 'right', figures: true },
  { label: '税率/征收率', width: 66, align: 'center', figures: false },
  { label: '税 额', width: WIDTH - 190 - 80 - 44 - 76 - 86 - 92 - 66, align: 'right', figures: true },
] as const;
const COLUMN_X = COLUMNS.reduce<number[]>((xs, c, i) => [...xs, (xs[i] ?? LEFT) + c.width], [LEFT]);

export function drawInvoice(doc: Doc, facts: PageFacts): void {
  const { invoice } = facts;
  const buyer = layOutParty(doc, invoice.buyer);
  const seller = layOutParty(doc, invoice.seller);
  // Long party details make their blocks taller; the lines table gives up that height, so the
  // frame never reaches further down the page than with the usual blocks.
  const partiesHeight = Math.max(MIN_PARTIES_HEIGHT, buyer.height, seller.height);
  const tableRoom = FIRST_PAGE_TABLE_HEIGHT - (partiesHeight - MIN_PARTIES_HEIGHT);
  const heights = invoice.lines.map((line) => rowHeight(doc, line));
  const tableHeight = heights.reduce((sum, h) => sum + h, 0);
  // Up to eight lines that fit the frame go on the invoice itself, as the official software does.
  const onList = invoice.lines.length > LINES_ON_FIRST_PAGE || tableHeight > tableRoom;
  drawHeader(doc, facts);

  // The frame: parties, lines, totals, 价税合计, remarks.
  const top = 118;
  const partiesBottom = top + partiesHeight;
  const headerBottom = partiesBottom + 20;
  const linesBottom = headerBottom + Math.max(96, (onList ? 18 : tableHeight) + 8);
  const totalsBottom = linesBottom + 22;
  const inWordsBottom = totalsBottom + 26;
  const bottom = inWordsBottom + 66;

  doc.lineWidth(0.8).strokeColor(FRAME);
  doc.rect(LEFT, top, WIDTH, bottom - top).stroke();
  hline(doc, partiesBottom);
  hline(doc, totalsBottom);
  hline(doc, inWordsBottom);
  vline(doc, LEFT + PARTY_WIDTH, top, partiesBottom);

  drawParty(doc, '购买方信息', buyer, LEFT, top, partiesBottom);
  drawParty(doc, '销售方信息', seller, LEFT + PARTY_WIDTH, top, partiesBottom);

  // Column headings, centred over their columns.
  COLUMNS.forEach((c, i) => label(doc, c.label, COLUMN_X[i]!, partiesBottom + 5, c.width, 'center'));
  if (onList) {
    cell(doc, '（详见销货清单）', 0, headerBottom + 2);
    cell(doc, formatYuan(invoice.totalAmount), 5, headerBottom + 2);
    cell(doc, formatYuan(invoice.totalTax), 7, headerBottom + 2);
  } else {
    let y = headerBottom + 2;
    invoice.lines.forEach((line, i) => {
      lineRow(doc, invoice, line, y);
      y += heights[i]!;
    });
  }

  // 合计
  label(doc, '合　　计', LEFT, linesBottom + 5, COLUMNS[0].width, 'center');
  value(doc, `¥${formatYuan(invoice.totalAmount)}`, COLUMN_X[5]!, linesBottom + 5, COLUMNS[5].width - 4, 'right');
  value(doc, `¥${formatYuan(invoice.totalTax)}`, COLUMN_X[7]!, linesBottom + 5, COLUMNS[7].width - 4, 'right');

  // 价税合计（大写）… （小写）
  const labelWidth = 130;
  vline(doc, LEFT + labelWidth, totalsBottom, inWordsBottom);
  label(doc, '价税合计（大写）', LEFT, totalsBottom + 7, labelWidth, 'center');
  doc.circle(LEFT + labelWidth + 16, totalsBottom + 13, 5.5).lineWidth(0.6).strokeColor(INK).stroke();
  doc.moveTo(LEFT + labelWidth + 12, totalsBottom + 9).lineTo(LEFT + labelWidth + 20, totalsBottom + 17)
    .moveTo(LEFT + labelWidth + 20, totalsBottom + 9).lineTo(LEFT + labelWidth + 12, totalsBottom + 17).stroke();
  value(doc, amountInWords(invoice.totalWithTax), LEFT + labelWidth + 28, totalsBottom + 6, 330, 'left', 11);
  label(doc, '（小写）', COLUMN_X[5]! - 10, totalsBottom + 7, 50, 'left');
  value(doc, `¥${formatYuan(invoice.totalWithTax)}`, COLUMN_X[5]! + 38, totalsBottom + 6, 150, 'left', 11);

  // 备注
  doc.lineWidth(0.8).strokeColor(FRAME);
  vline(doc, LEFT + 24, inWordsBottom, bottom);
  verticalLabel(doc, '备注', LEFT, inWordsBottom, bottom);
  // 备注 holds at most 230 characters (draft.ts): three lines at this size, always within the box.
  value(doc, invoice.remarks, LEFT + 32, inWordsBottom + 6, WIDTH - 40, 'left', 9, bottom - inWordsBottom - 10);

  label(doc, '开票人：', LEFT + 20, bottom + 10, 50, 'left');
  value(doc, invoice.issuer, LEFT + 66, bottom + 10, 200, 'left');

  if (onList) drawList(doc, facts);
}

function drawHeader(doc: Doc, { invoice, verifyUrl, checkCode }: PageFacts): void {
  // QR code, 2.2 cm square, top left, with its quiet zone inside the page margin.
  const matrix = qrMatrix(verifyUrl);
  const side = 64;
  const module = side / matrix.size;
  doc.fillColor(INK);
  for (const run of darkRuns(matrix)) doc.rect(LEFT + run.col * module, 32 + run.row * module, run.length * module + 0.05, module + 0.05);
  doc.fill();

  const title = TITLES[invoice.kind];
  doc.font('bold').fontSize(20).fillColor(FRAME);
  const titleWidth = doc.widthOfString(title);
  const titleX = (PAGE.width - titleWidth) / 2;
  doc.text(title, titleX, 44, { lineBreak: false });
  doc.lineWidth(0.8).strokeColor(FRAME);
  doc.moveTo(titleX - 6, 72).lineTo(titleX + titleWidth + 6, 72).stroke();
  doc.moveTo(titleX - 6, 75).lineTo(titleX + titleWidth + 6, 75).stroke();

  const x = RIGHT - 220;
  label(doc, '发票号码：', x, 44, 70, 'left');
  value(doc, invoice.number, x + 66, 44, 160, 'left');
  label(doc, '开票日期：', x, 62, 70, 'left');
  value(doc, chineseDate(invoice.issuedAt), x + 66, 62, 160, 'left');
  label(doc, '校 验 码：', x, 80, 70, 'left');
  value(doc, printedCheckCode(checkCode), x + 66, 80, 160, 'left');
}

/** A buyer or seller block measured before it is drawn: its fields, one row each, and its height. */
interface PartyBlock {
  rows: Array<{ field: LabelledText; height: number }>;
  height: number;
}

function layOutParty(doc: Doc, party: Party): PartyBlock {
  const fields: Array<[string, string]> = [
    ['名称：', party.name],
    ['统一社会信用代码/纳税人识别号：', party.taxId],
  ];
  const contact = [party.address, party.phone].filter(Boolean).join(' ');
  const bank = [party.bank, party.account].filter(Boolean).join(' ');
  if (contact) fields.push(['地址、电话：', contact]);
  if (bank) fields.push(['开户行及账号：', bank]);
  const crowded = fields.length > 2;
  const pitch = crowded ? 16 : 22;
  const size = crowded ? 9.5 : 10.5;
  // A value on one line fits the usual pitch; a wrapped one makes its row (and the block) taller.
  const rows = fields.map(([name, text]) => {
    const field = fitLabelled(doc, name, text, PARTY_WIDTH - 40, size);
    const height = field.value.wraps ? Math.max(pitch, field.value.height + FIELD_SPACING) : pitch;
    return { field, height };
  });
  const height = PARTY_PADDING_TOP + rows.reduce((sum, row) => sum + row.height, 0) + PARTY_PADDING_BOTTOM;
  return { rows, height };
}

function drawParty(doc: Doc, title: string, block: PartyBlock, x: number, top: number, bottom: number): void {
  doc.lineWidth(0.8).strokeColor(FRAME);
  vline(doc, x + 24, top, bottom);
  verticalLabel(doc, title, x, top, bottom);
  let y = top + PARTY_PADDING_TOP;
  for (const row of block.rows) {
    drawLabelled(doc, row.field, x + 32, y);
    y += row.height;
  }
}

function lineRow(doc: Doc, invoice: InvoiceContent, line: InvoiceLine, y: number): void {
  const rate = rateText(line.taxRate);
  const unitPrice = unitPriceExcludingTax(line, invoice.pricesIncludeTax);
  const texts = [line.name, line.spec, line.unit, line.quantity, unitPrice, formatYuan(line.amount), rate, taxText(line)];
  texts.forEach((text, i) => cell(doc, text, i, y));
}

/**
 * Text cells wrap inside their column (a 100-character item name takes several lines); figures
 * are set smaller until they fit on one line (the longest quantity, 21 characters, at about 6 pt).
 * Never cut.
 */
function cell(doc: Doc, text: string, column: number, y: number): void {
  if (!text) return;
  const c = COLUMNS[column]!;
  const x = COLUMN_X[column]! + 4;
  const width = c.width - 8;
  if (c.figures) drawFitted(doc, shrinkToLine(doc, text, width, CELL_FONT), x, y, c.align);
  else doc.font('regular').fontSize(CELL_FONT).fillColor(INK).text(text, x, y, { width, align: c.align, lineGap: -1 });
}

/** The height a line needs: its tallest wrapped cell. */
function rowHeight(doc: Doc, line: InvoiceLine): number {
  // Only the text columns wrap; figures always take one line.
  doc.font('regular').fontSize(CELL_FONT);
  let tallest = 0;
  [line.name, line.spec, line.unit].forEach((text, column) => {
    if (text) tallest = Math.max(tallest, doc.heightOfString(text, { width: COLUMNS[column]!.width - 8, lineGap: -1 }));
  });
  return Math.max(ROW_HEIGHT, Math.ceil(tallest) + 6);
}

/** 销货清单: every line, with the invoice's number and date, on as many pages as it takes. */
function drawList(doc: Doc, { invoice }: PageFacts): void {
  // Pages by height, since a line with a long name takes more than one row.
  const rowsHeight = 24 * ROW_HEIGHT;
  const pagesOfLines: InvoiceLine[][] = [[]];
  let used = 0;
  for (const line of invoice.lines) {
    const h = rowHeight(doc, line);
    if (used + h > rowsHeight && pagesOfLines.at(-1)!.length > 0) {
      pagesOfLines.push([]);
      used = 0;
    }
    pagesOfLines.at(-1)!.push(line);
    used += h;
  }
  const pages = pagesOfLines.length;
  // Each name on a line of its own: 100 characters of at most an em each fit the width at 7 pt,
  // so a name is set smaller but never wrapped here.
  const buyer = fitLabelled(doc, '购买方：', invoice.buyer.name, WIDTH, LABEL_FONT);
  const seller = fitLabelled(doc, '销售方：', invoice.seller.name, WIDTH, LABEL_FONT);
  for (let page = 0; page < pages; page++) {
    doc.addPage();
    doc.font('bold').fontSize(16).fillColor(FRAME);
    const title = '销售货物或者提供应税劳务、服务清单';
    doc.text(title, (PAGE.width - doc.widthOfString(title)) / 2, 40, { lineBreak: false });
    label(doc, `发票号码：${invoice.number}    开票日期：${chineseDate(invoice.issuedAt)}    第 ${page + 1} 页 / 共 ${pages} 页`, LEFT, 66, WIDTH, 'left');
    drawLabelled(doc, buyer, LEFT, 80);
    drawLabelled(doc, seller, LEFT, 94);
    const top = 108;
    doc.lineWidth(0.8).strokeColor(FRAME);
    const lines = pagesOfLines[page]!;
    const bottom = top + 22 + rowsHeight + 4;
    doc.rect(LEFT, top, WIDTH, bottom - top).stroke();
    hline(doc, top + 20);
    COLUMNS.forEach((c, i) => label(doc, c.label, COLUMN_X[i]!, top + 5, c.width, 'center'));
    let y = top + 24;
    for (const line of lines) {
      lineRow(doc, invoice, line, y);
      y += rowHeight(doc, line);
    }
    if (page === pages - 1) {
      label(doc, '合　　计', LEFT, bottom + 6, COLUMNS[0].width, 'center');
      value(doc, `¥${formatYuan(invoice.totalAmount)}`, COLUMN_X[5]!, bottom + 6, COLUMNS[5].width - 4, 'right');
      value(doc, `¥${formatYuan(invoice.totalTax)}`, COLUMN_X[7]!, bottom + 6, COLUMNS[7].width - 4, 'right');
    }
  }
}

type Align = 'left' | 'center' | 'right';

function label(doc: Doc, text: string, x: number, y: number, width: number, align: Align): void {
  doc.font('regular').fontSize(LABEL_FONT).fillColor(FRAME).text(text, x, y + 1, { width, align, lineBreak: false });
}

function value(doc: Doc, text: string, x: number, y: number, width: number, align: Align, size = 10, height?: number): void {
  if (!text) return;
  // Nothing printed on an invoice may be cut off: a block of text wraps in its box (height
  // given); a one-line value is fitted to its place (fitText).
  if (height !== undefined) {
    doc.font('regular').fontSize(size).fillColor(INK).text(text, x, y, { width, align, height, lineGap: -1 });
    return;
  }
  drawFitted(doc, fitText(doc, text, width, size), x, y, align);
}

/** Text set for a place `width` wide, measured before it is drawn. */
interface FittedText {
  text: string;
  width: number;
  /** The size asked for; a smaller one keeps to the middle of the band this one would take. */
  preferredSize: number;
  size: number;
  wraps: boolean;
  /** The height its lines take, one after another. */
  height: number;
}

/** The text on one line at the largest size up to `size` that fits `width` (however small). */
function shrinkToLine(doc: Doc, text: string, width: number, size: number): FittedText {
  const natural = doc.font('regular').fontSize(size).widthOfString(text);
  // Widths grow in proportion to the size; rounded down to a tenth of a point, so it surely fits.
  const fitted = natural <= width ? size : Math.floor(((size * width) / natural) * 10) / 10;
  return { text, width, preferredSize: size, size: fitted, wraps: false, height: size };
}

/**
 * The text on one line at the largest size up to `size` that fits `width`; if that would be
 * smaller than MIN_TEXT_SIZE, wrapped at MIN_TEXT_SIZE on as many lines as it takes, and the
 * caller makes room for its height.
 */
function fitText(doc: Doc, text: string, width: number, size: number): FittedText {
  const line = shrinkToLine(doc, text, width, size);
  if (line.size >= MIN_TEXT_SIZE) return line;
  const height = doc.fontSize(MIN_TEXT_SIZE).heightOfString(text, { width, lineGap: WRAPPED_LINE_GAP });
  return { ...line, size: MIN_TEXT_SIZE, wraps: true, height };
}

function drawFitted(doc: Doc, fitted: FittedText, x: number, y: number, align: Align): void {
  if (!fitted.text) return;
  doc.font('regular').fontSize(fitted.size).fillColor(INK);
  if (fitted.wraps) doc.text(fitted.text, x, y, { width: fitted.width, align, lineGap: WRAPPED_LINE_GAP });
  else doc.text(fitted.text, x, y + (fitted.preferredSize - fitted.size) / 2, { width: fitted.width, align, lineBreak: false });
}

/** A label in the frame's colour followed by its value, which is fitted to the rest of `width`. */
interface LabelledText {
  label: string;
  labelWidth: number;
  value: FittedText;
}

function fitLabelled(doc: Doc, label: string, text: string, width: number, size: number): LabelledText {
  const labelWidth = doc.font('regular').fontSize(LABEL_FONT).widthOfString(label);
  return { label, labelWidth, value: fitText(doc, text, width - labelWidth, size) };
}

function drawLabelled(doc: Doc, field: LabelledText, x: number, y: number): void {
  doc.font('regular').fontSize(LABEL_FONT).fillColor(FRAME).text(field.label, x, y + 1, { lineBreak: false });
  drawFitted(doc, field.value, x + field.labelWidth, y, 'left');
}

function verticalLabel(doc: Doc, text: string, x: number, top: number, bottom: number): void {
  const chars = [...text];
  const step = 12;
  let y = (top + bottom) / 2 - (chars.length * step) / 2;
  doc.font('regular').fontSize(9).fillColor(FRAME);
  for (const ch of chars) {
    doc.text(ch, x, y + 1, { width: 24, align: 'center', lineBreak: false });
    y += step;
  }
}

function hline(doc: Doc, y: number): void {
  doc.lineWidth(0.8).strokeColor(FRAME).moveTo(LEFT, y).lineTo(RIGHT, y).stroke();
}

function vline(doc: Doc, x: number, top: number, bottom: number): void {
  doc.lineWidth(0.8).strokeColor(FRAME).moveTo(x, top).lineTo(x, bottom).stroke();
}

export function rateText(rate: string): string {
  if (rate === 'exempt') return '免税';
  if (rate === 'non_taxable') return '不征税';
  const percent = Number(rate) * 100;
  return `${Number.isFinite(percent) ? Math.round(percent * 100) / 100 : rate}%`;
}

function taxText(line: InvoiceLine): string {
  return line.taxRate === 'exempt' || line.taxRate === 'non_taxable' ? '***' : formatYuan(line.tax);
}

/** "2026-11-22T10:11:12+08:00" → "2026年11月22日" */
export function chineseDate(issuedAt: string): string {
  return `${issuedAt.slice(0, 4)}年${issuedAt.slice(5, 7)}月${issuedAt.slice(8, 10)}日`;
}
