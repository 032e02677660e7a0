// 开具: validate → price → number → seal into the chain → store invoice, audit entry and upload
// job in ONE transaction → answer only after the commit (R6). A repeated Idempotency-Key with
// the same body gives back the same invoice (R5).
//
// Requests for one merchant that arrive while its previous batch is being written wait for the
// next one (issue-batches.ts), and a batch is one transaction: the merchant's lock, its numbers,
// the chain heads, every table's rows and the commit are paid once per batch instead of once per
// invoice. Each request is still decided alone, in arrival order: one refused by a limit or a
// reused key gets its own fault and takes no number, and the others are issued.
import { authorize, type Caller } from '../domain/access.js';
import { draftInvoice, type InvoiceRequest } from '../domain/draft.js';
import { printableCharacters } from '../documents/font.js';
import { Fault, faults } from '../domain/faults.js';
import { invoiceContent, sealInvoice, sha256, type Invoice, type InvoiceDraft } from '../domain/invoice.js';
import { auditScope, invoiceChainScope } from '../domain/audit-chain.js';
import { invoiceNumber } from '../domain/numbering.js';
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import { chainAudit } from './audit.js';
import { IssueAllowance } from './issue-allowance.js';
import { MerchantQueues, type Outcome } from './issue-batches.js';
import { YearNumbers } from './number-blocks.js';
import type { IdempotencyRecord, Ports, Repositories } from './ports.js';
import { uploadJobs } from './upload-record.js';

export interface IssueResult {
  invoice: Invoice;
  /** True when an earlier request with the same Idempotency-Key already made this invoice. */
  replayed: boolean;
}

/** A request checked and priced, waiting for its merchant's next batch. */
export interface PendingIssue {
  caller: Caller;
  draft: InvoiceDraft;
  requestHash: string;
  idempotencyKey?: string;
}

export async function issueInvoice(ports: Ports, caller: Caller, request: InvoiceRequest, idempotencyKey?: string): Promise<IssueResult> {
  authorize(caller, 'invoice.issue');
  const draft = draftInvoice(request, printableCharacters()); // pure; a rejection here has touched nothing
  const requestHash = sha256(JSON.stringify(request));
  return queuesOf(ports).submit({ caller, draft, requestHash, ...(idempotencyKey !== undefined && { idempotencyKey }) });
}

/** This process's queues for `ports` (a store with its clock and signer). */
const queuesByPorts = new WeakMap<Ports, MerchantQueues<PendingIssue, IssueResult>>();

function queuesOf(ports: Ports): MerchantQueues<PendingIssue, IssueResult> {
  let queues = queuesByPorts.get(ports);
  if (!queues) {
    queues = new MerchantQueues((merchantId, take) => issueBatch(ports, merchantId, take));
    queuesByPorts.set(ports, queues);
  }
  return queues;
}

/** One merchant's batch in one transaction; an outcome per request taken, in order. */
function issueBatch(ports: Ports, merchantId: string, take: () => readonly PendingIssue[]): Promise<Array<Outcome<IssueResult>>> {
  return ports.store.write(async (tx) => {
    const merchant = await tx.merchants.lock(merchantId);
    const requests = take(); // under the lock: what arrived while it was awaited joins this batch
    if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: merchantId });
    const keys = [...new Set(requests.flatMap((r) => (r.idempotencyKey === undefined ? [] : [r.idempotencyKey])))];
    const now = ports.clock.now();
    const issuedAt = shanghaiTimestamp(now);
    const date = shanghaiDate(now);
    const year = Number(date.slice(0, 4));
    const kinds = new Set(requests.map((r) => r.draft.kind));
    const { earlier, usage, blocks, heads } = await tx.issues.context({
      merchantId, keys, periods: IssueAllowance.periods(merchant, date, kinds), year, scopes: [invoiceChainScope(merchantId), auditScope(merchantId)],
    });
    const allowance = new IssueAllowance(merchant, date, now, kinds, usage);
    const numbers = new YearNumbers(year, blocks); // from the tax service's 号段
    const [invoiceHead, auditHead] = heads;

    const seller = { name: merchant.name, taxId: merchant.taxId, address: merchant.address, phone: merchant.phone, bank: merchant.bank, account: merchant.account };
    const signer = ports.signer;
    const sign = signer && ((digest: string) => signer.sign(digest)); // R22: one Ed25519 signature (~25 µs), stored in the same row
    let head = invoiceHead!;
    const issued: Invoice[] = [];
    const keyRecords: IdempotencyRecord[] = [];
    const madeByKey = new Map<string, Made>();
    const issueOne = async ({ caller, draft, requestHash, idempotencyKey }: PendingIssue): Promise<IssueResult> => {
      if (idempotencyKey !== undefined) {
        const replay = await replayOf(tx, merchantId, requestHash, madeByKey.get(idempotencyKey) ?? earlier.get(idempotencyKey));
        if (replay) return replay;
      }
      const refusal = allowance.refusal(draft.kind, draft.totalAmount);
      if (refusal) throw refusal;
      const sequence = numbers.take();
      allowance.add(draft.kind, draft.totalAmount, issuedAt);
      const content = invoiceContent(draft, { number: invoiceNumber(year, merchant.regionCode, sequence), issuedAt, seller, issuer: caller.actor });
      const invoice = sealInvoice(merchantId, content, head, sign);
      head = { scope: head.scope, hash: invoice.chainHash, index: invoice.chainIndex };
      issued.push(invoice);
      if (idempotencyKey !== undefined) {
        keyRecords.push({ merchantId, key: idempotencyKey, requestHash, invoiceNumber: invoice.number, createdAt: issuedAt });
        madeByKey.set(idempotencyKey, { requestHash, invoiceNumber: invoice.number, invoice });
      }
      return { invoice, replayed: false };
    };

    const outcomes: Array<Outcome<IssueResult>> = [];
    for (const request of requests) {
      try {
        outcomes.push({ ok: true, value: await issueOne(request) });
      } catch (error) {
        if (!(error instanceof Fault)) throw error; // not this request's fault: the batch rolls back
        outcomes.push({ ok: false, error });
      }
    }
    if (issued.length > 0) {
      const audit = chainAudit(issuedAt, issued.map((invoice) => ({ merchantId, actor: invoice.issuer, action: 'invoice.issued', subject: invoice.number, detail: { digest: invoice.digest } })), auditHead!);
      await tx.issues.store({
        merchantId, at: issuedAt, invoices: issued, blocks: numbers.advances(), usage: allowance.changes(), keys: keyRecords,
        uploads: uploadJobs(issued, issuedAt), audit: audit.entries, heads: [head, audit.head],
      });
    }
    return outcomes;
  });
}

/** A key's first use: stored earlier (the invoice is read when needed), or earlier in this batch. */
type Made = Pick<IdempotencyRecord, 'requestHash' | 'invoiceNumber'> & { invoice?: Invoice };

/** The answer to a repeated Idempotency-Key: the invoice it made, or 409 when the body differs. */
async function replayOf(tx: Repositories, merchantId: string, requestHash: string, earlier: Made | undefined): Promise<IssueResult | undefined> {
  if (!earlier) return undefined;
  if (earlier.requestHash !== requestHash) throw new Fault(faults.IDEMPOTENCY_KEY_REUSED, { number: earlier.invoiceNumber });
  const invoice = earlier.invoice ?? (await tx.invoices.get(merchantId, earlier.invoiceNumber));
  if (!invoice) throw new Error(`idempotency key points at missing invoice ${earlier.invoiceNumber}`);
  return { invoice, replayed: true };
}
