// `fapiao chain verify` (R24, R53): walks each merchant's invoice chain and audit chain and
// reports the first place where a stored row no longer matches what the application wrote.
import { auditHash, auditScope, invoiceChainScope } from '../domain/audit-chain.js';
import { chainLink, contentDigest, GENESIS_HASH, type InvoiceStatus } from '../domain/invoice.js';
import type { Ports } from './ports.js';
import { PublicKeys } from './verify-invoice.js';

export interface ChainBreak {
  merchantId: string;
  chain: 'invoices' | 'audit';
  /** The invoice number, or the audit entry id. */
  at: string;
  reason: string;
}

export interface ChainReport {
  merchantId: string;
  invoices: number;
  auditEntries: number;
  breaks: ChainBreak[];
}

const PAGE = 500;

export async function verifyChains(ports: Ports, merchantIds?: string[]): Promise<ChainReport[]> {
  const ids = merchantIds ?? (await ports.store.read.merchants.list()).map((m) => m.id);
  const reports: ChainReport[] = [];
  const keys = PublicKeys.fromStore(ports, ports.signer, false);
  for (const merchantId of ids) {
    const audit = await verifyAuditChain(ports, merchantId);
    const invoices = await verifyInvoiceChain(ports, merchantId, audit.statusByNumber, keys);
    reports.push({ merchantId, invoices: invoices.count, auditEntries: audit.count, breaks: [...invoices.breaks, ...audit.breaks] });
  }
  return reports;
}

async function verifyInvoiceChain(ports: Ports, merchantId: string, statusByNumber: Map<string, InvoiceStatus>, keys: PublicKeys) {
  const breaks: ChainBreak[] = [];
  const broken = (at: string, reason: string) => breaks.push({ merchantId, chain: 'invoices', at, reason });
  let previous = { hash: GENESIS_HASH, index: 0, number: '(start)' };
  let signing = false; // once one invoice of the chain is signed, every later one must be
  for (;;) {
    const page = await ports.store.read.invoices.chainPage(merchantId, previous.index, PAGE);
    for (const invoice of page) {
      if (invoice.chainIndex !== previous.index + 1) broken(invoice.number, `chain position ${invoice.chainIndex} follows ${previous.index}: an invoice after ${previous.number} is missing`);
      else if (invoice.prevHash !== previous.hash) broken(invoice.number, `its link does not match invoice ${previous.number}: a row was replaced or inserted`);
      else if (contentDigest(invoice) !== invoice.digest) broken(invoice.number, 'its content does not match its digest: the row was altered');
      else if (chainLink(invoice.prevHash, invoice.digest) !== invoice.chainHash) broken(invoice.number, 'its chain hash is wrong: the row was altered');
      // The hashes are public algorithms; only the signature needs the platform's private key. A
      // row altered and re-hashed all the way to the chain head is caught here.
      else if (invoice.signature && !(await keys.holds(invoice.signature, invoice.digest))) broken(invoice.number, 'its signature does not match its content: the row was altered and re-hashed, or forged');
      else if (!invoice.signature && signing) broken(invoice.number, 'it has no signature although earlier invoices do: the signature was removed');
      else if ((statusByNumber.get(invoice.number) ?? 'missing') !== invoice.status) {
        broken(invoice.number, `its status ${invoice.status} is not what the audit log records (${statusByNumber.get(invoice.number) ?? 'no issue entry'})`);
      }
      previous = { hash: invoice.chainHash, index: invoice.chainIndex, number: invoice.number };
      signing ||= Boolean(invoice.signature);
    }
    if (page.length < PAGE) break;
  }
  const [head] = await ports.store.read.chain.heads([invoiceChainScope(merchantId)]);
  if (head!.index !== previous.index || head!.hash !== previous.hash) {
    broken(previous.number, `the chain ends at position ${previous.index} but ${head!.index} invoices were issued: invoices at the end were deleted`);
  }
  return { count: previous.index, breaks };
}

// Status moves that the audit log records, so a status changed by hand is caught too.
const statusAfter: Record<string, InvoiceStatus> = {
  'invoice.issued': 'issued',
  'invoice.voided': 'voided',
  'invoice.uploaded': 'uploaded',
  'invoice.rejected': 'rejected',
  'invoice.reversed': 'reversed',
};

const UPLOADED_BATCH = 'invoices.uploaded';

function uploadedNumbers(detail: string): string[] {
  try {
    const numbers = (JSON.parse(detail) as { numbers?: unknown }).numbers;
    return Array.isArray(numbers) ? numbers.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

async function verifyAuditChain(ports: Ports, merchantId: string) {
  const breaks: ChainBreak[] = [];
  const statusByNumber = new Map<string, InvoiceStatus>();
  let prevHash = GENESIS_HASH;
  let afterId = 0;
  let count = 0;
  for (;;) {
    const page = await ports.store.read.audit.page(merchantId, afterId, PAGE);
    for (const entry of page) {
      count += 1;
      if (entry.prevHash !== prevHash || auditHash(prevHash, entry) !== entry.hash) {
        breaks.push({ merchantId, chain: 'audit', at: String(entry.id), reason: `audit entry ${entry.id} (${entry.action} ${entry.subject}) was altered, inserted or follows a deleted entry` });
      }
      const status = statusAfter[entry.action];
      if (status) statusByNumber.set(entry.subject, status);
      // The upload worker records a submission's acceptances as one entry listing the numbers.
      else if (entry.action === UPLOADED_BATCH) for (const number of uploadedNumbers(entry.detail)) statusByNumber.set(number, 'uploaded');
      prevHash = entry.hash;
      afterId = entry.id;
    }
    if (page.length < PAGE) break;
  }
  const [head] = await ports.store.read.chain.heads([auditScope(merchantId)]);
  if (head!.index !== count || head!.hash !== prevHash) {
    breaks.push({ merchantId, chain: 'audit', at: String(afterId), reason: `the audit log ends after ${count} entries but ${head!.index} were written: entries at the end were deleted` });
  }
  return { count, breaks, statusByNumber };
}
