// Invoice states and the moves between them.
//   issued ──upload accepted──▶ uploaded ──red-letter──▶ reversed
//     │  └──upload rejected──▶ rejected
//     └──void (same month)──▶ voided ◀── uploaded / rejected (same month)
import { Fault, faults } from './faults.js';
import type { Invoice, InvoiceStatus } from './invoice.js';
import { shanghaiMonth } from './time.js';

export type InvoiceEvent = 'upload_accepted' | 'upload_rejected' | 'void' | 'reverse';

const moves: Record<InvoiceEvent, Partial<Record<InvoiceStatus, InvoiceStatus>>> = {
  upload_accepted: { issued: 'uploaded', rejected: 'uploaded' },
  upload_rejected: { issued: 'rejected' },
  void: { issued: 'voided', uploaded: 'voided', rejected: 'voided' },
  reverse: { uploaded: 'reversed' },
};

const actionWords: Record<InvoiceEvent, { zh: string; en: string }> = {
  upload_accepted: { zh: '标记为已上传', en: 'uploaded' },
  upload_rejected: { zh: '标记为被拒收', en: 'rejected' },
  void: { zh: '作废', en: 'voided' },
  reverse: { zh: '红冲', en: 'reversed' },
};

const statusWordsZh: Record<InvoiceStatus, string> = {
  issued: '已开具', uploaded: '已上传', rejected: '被税务服务拒收', voided: '已作废', reversed: '已红冲',
};

export function nextStatus(invoice: Pick<Invoice, 'number' | 'status'>, event: InvoiceEvent): InvoiceStatus {
  const next = moves[event][invoice.status];
  if (!next) {
    throw new Fault(faults.INVOICE_STATE_CONFLICT, {
      number: invoice.number, status: invoice.status, statusZh: statusWordsZh[invoice.status], action: actionWords[event].en, actionZh: actionWords[event].zh,
    });
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
