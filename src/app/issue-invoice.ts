// 开具: validate → price → number → seal into the chain → store invoice, audit entry and upload
// job in ONE transaction → answer only after the commit (R6). A repeated Idempotency-Key with
// the same body gives back the same invoice (R5).
//
// Requests for one merchant that arrive while its previous batch is being written wait for the
// next one (issue-batches.ts), and a batch is one transaction: the merchant's lock, its numbers,
// the chain heads, every table's rows and the commit are paid once per batch instead of once per
// invoice. Each request is still decided alone, in arrival order: one refused by a limit or a
// reused key gets its own fault and takes no number, and the others are issued. Where each round
// trip under the lock costs (PostgreSQL), a request's key is read before it joins the queue
// (key-lookups.ts), so that nothing the batch reads under the lock depends on its requests.
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
import { KeyLookups, type KeyRead } from './key-lookups.js';
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
  /** Its key as read before the lock (`Store.readsKeysBeforeLock`); undefined when the batch reads it. */
  earlier?: KeyRead;
}

export async function issueInvoice(ports: Ports, caller: Caller, request: InvoiceRequest, idempotencyKey?: string): Promise<IssueResult> {
  authorize(caller, 'invoice.issue');
  const draft = draftInvoice(request, printableCharacters()); // pure; a rejection here has touched nothing
  const requestHash = sha256(JSON.stringify(request));
  const pending: PendingIssue = { caller, draft, requestHash };
  if (idempotencyKey !== undefined) {
    pending.idempotencyKey = idempotencyKey;
    if (ports.store.readsKeysBeforeLock) pending.earlier = await keyLookupsOf(ports).find(caller.merchantId, idempotencyKey);
  }
  return queuesOf(ports).submit(pending);
}

/** This process's one `T` for `ports` (a store with its clock and signer), made on first use. */
function perPorts<T extends object>(make: (ports: Ports) => T): (ports: Ports) => T {
  const made = new WeakMap<Ports, T>();
  return (ports) => {
    let it = made.get(ports);
    if (!it) made.set(ports, (it = make(ports)));
    return it;
  };
}

const queuesOf = perPorts((ports) => new MerchantQueues<PendingIssue, IssueResult>((merchantId, take) => issueBatch(ports, merchantId, take)));
const keyLookupsOf = perPorts((ports) => new KeyLookups(ports.store));

/** One merchant's batch in one transaction; an outcome per request taken, in order. */
function issueBatch(ports: Ports, merchantId: string, take: () => readonly PendingIssue[]): Promise<Array<Outcome<IssueResult>>> {
  let attempt = 0;
  return ports.store.write(async (tx) => {
    attempt += 1;
    const scopes = [invoiceChainScope(merchantId), auditScope(merchantId)];
    const contextOf = (date: string) => tx.issues.context({ merchantId, periods: IssueAllowance.periodsOf(date), year: Number(date.slice(0, 4)), scopes });
    // The lock's statement goes out with the context's (PostgreSQL), which reads once it is granted.
    await tx.merchants.hold(merchantId);
    const askedFor = shanghaiDate(ports.clock.now());
    let context = await contextOf(askedFor);
    const requests = take(); // under the lock: what arrived while it was awaited joins this batch
    const now = ports.clock.now();
    const issuedAt = shanghaiTimestamp(now);
    const date = shanghaiDate(now);
    if (date !== askedFor) context = await contextOf(date); // the lock was granted after midnight: the new day's counters (and year's numbers)
    const { merchant, usage, blocks, heads } = context;
    if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: merchantId });
    const year = Number(date.slice(0, 4));
    const kinds = new Set(requests.map((r) => r.draft.kind));
    const { earlier, unusedBeforeLock } = await keysOf(tx, merchantId, requests, attempt > 1);
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
    const decide = async ({ caller, draft, requestHash, idempotencyKey }: PendingIssue): Promise<IssueResult> => {
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
    // A refusal (a limit, no number left) stores nothing, so no unique key catches a key read as
    // unused before the lock and stored since (a client's retry, another instance): it is read again
    // now, and a request that turns out to be a repeat gets its invoice (or 409), not the refusal.
    const issueOne = async (request: PendingIssue): Promise<IssueResult> => {
      try {
        return await decide(request);
      } catch (error) {
        const key = request.idempotencyKey;
        if (!(error instanceof Fault) || key === undefined || !unusedBeforeLock.delete(key)) throw error;
        const record = (await tx.idempotency.find(merchantId, [key])).get(key);
        if (!record) throw error;
        earlier.set(key, record);
        return (await replayOf(tx, merchantId, request.requestHash, record))!;
      }
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

/**
 * The stored records of the batch's keys: as read before the lock where they were, the others read
 * now, under it; and the keys read as unused before the lock, which another request may have stored
 * since. A batch run again (`again`: the store retries a unique violation, e.g. such a key stored)
 * reads all of them now.
 */
async function keysOf(tx: Repositories, merchantId: string, requests: readonly PendingIssue[], again: boolean): Promise<{ earlier: Map<string, IdempotencyRecord>; unusedBeforeLock: Set<string> }> {
  const keyed = requests.filter((r): r is PendingIssue & { idempotencyKey: string } => r.idempotencyKey !== undefined);
  const unread = new Set(keyed.filter((r) => again || r.earlier === undefined).map((r) => r.idempotencyKey));
  const earlier = unread.size > 0 ? await tx.idempotency.find(merchantId, [...unread]) : new Map<string, IdempotencyRecord>();
  const unusedBeforeLock = new Set<string>();
  for (const { idempotencyKey: key, earlier: read } of keyed) {
    if (unread.has(key)) continue;
    if (read) earlier.set(key, read);
    else unusedBeforeLock.add(key);
  }
  return { earlier, unusedBeforeLock };
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
