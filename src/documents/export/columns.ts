// The columns of an invoice export, shared by CSV and XLSX: one row per invoice, in the order and
// with the headings an accountant expects. Amounts stay bigint fen until the writer formats them.
import type { Invoice, InvoiceKind, InvoiceStatus } from '../../domain/invoice.js';

export type Cell = { text: string } | { fen: bigint };

export interface Column {
  heading: string;
  width: number;
  /** Money: the cell is fen, written as yuan with two decimals. */
  amount?: boolean;
  cell(invoice: Invoice): Cell;
}

const kindNames: Record<InvoiceKind, string> = { normal: '电子发票（普通发票）', special: '电子发票（增值税专用发票）' };
const statusNames: Record<InvoiceStatus, string> = { issued: '已开具', uploaded: '已上传', rejected: '上传被拒', voided: '已作废', reversed: '已红冲' };

const text = (value: string): Cell => ({ text: value });

export const exportColumns: readonly Column[] = [
  { heading: '发票号码', width: 24, cell: (i) => text(i.number) },
  { heading: '发票种类', width: 26, cell: (i) => text(kindNames[i.kind] ?? i.kind) },
  { heading: '状态', width: 10, cell: (i) => text(statusNames[i.status] ?? i.status) },
  { heading: '开票日期', width: 12, cell: (i) => text(i.issuedAt.slice(0, 10)) },
  { heading: '开票时间', width: 30, cell: (i) => text(i.issuedAt) },
  { heading: '购买方名称', width: 36, cell: (i) => text(i.buyer.name) },
  { heading: '购买方纳税人识别号', width: 22, cell: (i) => text(i.buyer.taxId) },
  { heading: '金额', amount: true, width: 16, cell: (i) => ({ fen: i.totalAmount }) },
  { heading: '税额', amount: true, width: 14, cell: (i) => ({ fen: i.totalTax }) },
  { heading: '价税合计', amount: true, width: 16, cell: (i) => ({ fen: i.totalWithTax }) },
  { heading: '开票人', width: 16, cell: (i) => text(i.issuer) },
  { heading: '备注', width: 40, cell: (i) => text(i.remarks) },
  { heading: '作废或红冲原因', width: 30, cell: (i) => text(i.voidReason ?? '') },
];

/**
 * Text that a spreadsheet would run as a formula (CSV/formula injection): a buyer named
 * "=HYPERLINK(…)" must arrive as that text, not as a live formula. Such cells get a leading
 * apostrophe, as OWASP advises; amounts are written by us and never need it.
 */
export function defuseFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}
