// Invoice states and the moves between them.
//   issued ──upload accepted──▶ uploaded ──red-letter──▶ reversed
//     │  └──upload rejected──▶ rejected
//     └──void (same month)──▶ voided ◀── uploaded / rejected (same month)
import { bilingual, Fault, faults, type Bilingual } from './faults.js';
import type { Invoice, InvoiceStatus } from './invoice.js';
import { shanghaiMonth } from './time.js';

export type InvoiceEvent = 'upload_accepted' | 'upload_rejected' | 'void' | 'reverse';

const moves: Record<InvoiceEvent, Partial<Record<InvoiceStatus, InvoiceStatus>>> = {
  upload_accepted: { issued: 'uploaded', rejected: 'uploaded' },
  upload_rejected: { issued: 'rejected' },
  void: { issued: 'voided', uploaded: 'voided', rejected: 'voided' },
  reverse: { uploaded: 'reversed' },
};

const actionWords: Record<InvoiceEvent, Bilingual> = {
  upload_accepted: bilingual('标记为已上传', 'uploaded'),
  upload_rejected: bilingual('标记为被拒收', 'rejected'),
  void: bilingual('作废', 'voided'),
  reverse: bilingual('红冲', 'reversed'),
};

const statusWords: Record<InvoiceStatus, Bilingual> = {
  issued: bilingual('已开具', 'issued'),
  uploaded: bilingual('已上传', 'uploaded'),
  rejected: bilingual('被税务服务拒收', 'rejected'),
  voided: bilingual('已作废', 'voided'),
  reversed: bilingual('已红冲', 'reversed'),
};

export function nextStatus(invoice: Pick<Invoice, 'number' | 'status'>, event: InvoiceEvent): InvoiceStatus {
  const next = moves[event][invoice.status];
  if (!next) {
    throw new Fault(faults.INVOICE_STATE_CONFLICT, { number: invoice.number, status: statusWords[invoice.status], action: actionWords[event] });
  }
  return next;
}

/** 作废 is allowed only within the calendar month of issue (Asia/Shanghai); later, reverse instead. */
export function checkVoidable(invoice: Pick<Invoice, 'number' | 'status' | 'issuedAt'>, now: Date): InvoiceStatus {
  const next = nextStatus(invoice, 'void');
  const issuedMonth = invoice.issuedAt.slice(0, 7);
  if (issuedMonth !== shanghaiMonth(now)) {
    throw new Fault(faults.VOID_PERIOD_CLOSED, { number: invoice.number, month: issuedMonth });
  }
  return next;
}
