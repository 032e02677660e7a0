// 作废: only within the month of issue and from a state that allows it; the reason is kept on
// the invoice and in the audit log, and the void is queued for the tax service in the same
// transaction (void-worker.ts delivers it).
import { authorize, type Caller } from '../domain/access.js';
import { Fault, faults } from '../domain/faults.js';
import { checkVoidable } from '../domain/invoice-state.js';
import type { Invoice } from '../domain/invoice.js';
import { checkText } from '../domain/text.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { recordAudit } from './audit.js';
import { monthPeriod } from './issue-allowance.js';
import type { Ports } from './ports.js';
import { enqueueVoid } from './void-worker.js';

export async function voidInvoice(ports: Ports, caller: Caller, number: string, reason: string): Promise<Invoice> {
  authorize(caller, 'invoice.void');
  checkText(reason, 'reason', 200, true);
  return ports.store.write(async (tx) => {
    await tx.merchants.hold(caller.merchantId);
    const invoice = await tx.invoices.get(caller.merchantId, number);
    if (!invoice) throw new Fault(faults.INVOICE_NOT_FOUND, { number });
    const now = ports.clock.now();
    const status = checkVoidable(invoice, now);
    const at = shanghaiTimestamp(now);
    // Once voided the status no longer says whether the tax service holds the invoice: keep it.
    const uploadedAt = invoice.status === 'uploaded' ? invoice.statusChangedAt : (invoice.uploadedAt ?? null);
    await tx.voids.record(caller.merchantId, number, { at, reason, uploadedAt });
    // A voided invoice no longer uses the month's credit line (授信额度).
    await tx.usage.add(caller.merchantId, [{ period: monthPeriod(invoice.issuedAt.slice(0, 10)), invoiceCount: 0, preTaxFen: -invoice.totalAmount }]);
    // The void's report to the tax service, durable with the void itself; the void worker sends it
    // once the tax service holds the invoice (after its upload, if that has not run yet).
    await enqueueVoid(tx, caller.merchantId, number, { reason, voidedAt: at }, at);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'invoice.voided', subject: number, detail: { reason, from: invoice.status } });
    return { ...invoice, status, statusChangedAt: at, voidReason: reason, ...(uploadedAt && { uploadedAt }), voidReport: { state: 'pending', at: null, reason: null } };
  });
}
