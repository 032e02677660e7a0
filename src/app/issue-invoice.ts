// 开具: validate → price → number → seal into the chain → store invoice, audit entry and upload
// job in ONE transaction → answer only after the commit (R6). A repeated Idempotency-Key with
// the same body gives back the same invoice (R5).
import { authorize, type Caller } from '../domain/access.js';
import { draftInvoice, type InvoiceRequest } from '../domain/draft.js';
import { Fault, faults } from '../domain/faults.js';
import { sealInvoice, sha256, type Invoice, type InvoiceContent } from '../domain/invoice.js';
import { auditScope, invoiceChainScope } from '../domain/audit-chain.js';
import { formatYuan } from '../domain/money.js';
import { invoiceNumber } from '../domain/numbering.js';
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import { appendAudit } from './audit.js';
import { takeSequence } from './number-blocks.js';
import { checkBacklogAfterIssue } from './contingency.js';
import { backlogPeriod } from '../domain/contingency.js';
import type { MerchantRecord, Ports, Repositories } from './ports.js';
import { enqueueUpload } from './upload-record.js';

export interface IssueResult {
  invoice: Invoice;
  /** True when an earlier request with the same Idempotency-Key already made this invoice. */
  replayed: boolean;
}

export async function issueInvoice(ports: Ports, caller: Caller, request: InvoiceRequest, idempotencyKey?: string): Promise<IssueResult> {
  authorize(caller, 'invoice.issue');
  const draft = draftInvoice(request); // pure; a rejection here has touched nothing
  const requestHash = sha256(JSON.stringify(request));

  return ports.store.write(async (tx) => {
    const merchant = await tx.merchants.lock(caller.merchantId);
    if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: caller.merchantId });
    if (idempotencyKey !== undefined) {
      const earlier = await tx.idempotency.find(caller.merchantId, idempotencyKey);
      if (earlier) {
        if (earlier.requestHash !== requestHash) throw new Fault(faults.IDEMPOTENCY_KEY_REUSED, { number: earlier.invoiceNumber });
        const invoice = await tx.invoices.get(caller.merchantId, earlier.invoiceNumber);
        if (!invoice) throw new Error(`idempotency key points at missing invoice ${earlier.invoiceNumber}`);
        return { invoice, replayed: true };
      }
    }

    const now = ports.clock.now();
    const issuedAt = shanghaiTimestamp(now);
    const date = shanghaiDate(now);
    await checkLimits(tx, merchant, date, draft.totalAmount);

    const sequence = await takeSequence(tx, merchant.id, Number(date.slice(0, 4))); // from the tax service's 号段
    const content: InvoiceContent = {
      ...draft,
      number: invoiceNumber(Number(date.slice(0, 4)), merchant.regionCode, sequence),
      issuedAt,
      seller: { name: merchant.name, taxId: merchant.taxId, address: merchant.address, phone: merchant.phone, bank: merchant.bank, account: merchant.account },
      issuer: caller.actor,
    };
    const [invoiceHead, auditHead] = await tx.chain.heads([invoiceChainScope(merchant.id), auditScope(merchant.id)]);
    const sealed = sealInvoice(merchant.id, content, invoiceHead!);
    // R22: sign the digest (one Ed25519 signature, ~50 µs); stored in the same row, no extra statement.
    const invoice = ports.signer ? { ...sealed, signature: ports.signer.sign(sealed.digest) } : sealed;
    await tx.invoices.insert(invoice);
    // The same statement counts the kind's upload backlog and returns it: past a contingency limit
    // the issue is refused here and everything above rolls back.
    const counters = await tx.usage.add(merchant.id, [dayPeriod(date), monthPeriod(date), backlogPeriod(draft.kind)], { invoiceCount: 1, preTaxFen: draft.totalAmount, at: issuedAt });
    checkBacklogAfterIssue(merchant, draft.kind, counters, draft.totalAmount, now);
    if (idempotencyKey !== undefined) {
      await tx.idempotency.insert({ merchantId: merchant.id, key: idempotencyKey, requestHash, invoiceNumber: invoice.number, createdAt: issuedAt });
    }
    await enqueueUpload(tx, invoice, issuedAt);
    const audited = await appendAudit(tx, ports.clock, { merchantId: merchant.id, actor: caller.actor, action: 'invoice.issued', subject: invoice.number, detail: { digest: invoice.digest } }, auditHead!);
    await tx.chain.advance([{ scope: invoiceHead!.scope, hash: invoice.chainHash, index: invoice.chainIndex }, audited]);
    return { invoice, replayed: false };
  });
}

export const dayPeriod = (date: string) => `D${date}`;
export const monthPeriod = (date: string) => `M${date.slice(0, 7)}`;

// 开票限额 and 授信额度 (R9): checked inside the transaction, so concurrent issues cannot
// overshoot them together.
async function checkLimits(tx: Repositories, merchant: MerchantRecord, date: string, preTaxFen: bigint): Promise<void> {
  if (merchant.dailyInvoiceLimit !== null) {
    const today = await tx.usage.get(merchant.id, dayPeriod(date));
    if (today.invoiceCount >= merchant.dailyInvoiceLimit) {
      throw new Fault(faults.DAILY_LIMIT_REACHED, { limit: String(merchant.dailyInvoiceLimit) });
    }
  }
  if (merchant.monthlyCreditFen !== null) {
    const month = await tx.usage.get(merchant.id, monthPeriod(date));
    const remaining = merchant.monthlyCreditFen - month.preTaxFen;
    if (preTaxFen > remaining) {
      throw new Fault(faults.CREDIT_LINE_EXCEEDED, { remaining: formatYuan(remaining > 0n ? remaining : 0n), amount: formatYuan(preTaxFen) });
    }
  }
}
