// The invoice as the platform keeps it. Content fields are immutable once issued; only the
// status moves, and every move is an audited event.
import { createHash } from 'node:crypto';
import type { Fen } from './money.js';
import type { InvoiceSignature } from './signature.js';
import type { VoidReport } from './void-report.js';

export const invoiceKinds = ['normal', 'special'] as const; // 普通发票 | 增值税专用发票 (both electronic)
export type InvoiceKind = (typeof invoiceKinds)[number];

export const invoiceStatuses = ['issued', 'uploaded', 'rejected', 'voided', 'reversed'] as const;
export type InvoiceStatus = (typeof invoiceStatuses)[number];

export interface Party {
  name: string;
  taxId: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
}

export interface Buyer extends Party {
  email: string;
}

export interface InvoiceLine {
  name: string;
  taxCode: string;
  spec: string;
  unit: string;
  quantity: string; // canonical decimal text
  unitPrice: string; // canonical decimal text
  taxRate: string; // "0.13", "0", "exempt", "non_taxable"
  amount: Fen;
  tax: Fen;
}

/** What the merchant asked for, priced and checked: everything but number, time and chain. */
export interface InvoiceDraft {
  kind: InvoiceKind;
  pricesIncludeTax: boolean;
  remarks: string;
  buyer: Buyer;
  lines: InvoiceLine[];
  totalAmount: Fen;
  totalTax: Fen;
  totalWithTax: Fen;
}

export interface InvoiceContent extends InvoiceDraft {
  number: string;
  issuedAt: string; // Shanghai timestamp
  seller: Party;
  issuer: string; // who issued it: a user name or an API key label
}

export interface Invoice extends InvoiceContent {
  merchantId: string;
  status: InvoiceStatus;
  digest: string; // SHA-256 of the canonical content
  prevHash: string; // chain hash of the merchant's previous invoice
  chainHash: string; // SHA-256(prevHash + digest)
  chainIndex: number; // position in the merchant's chain, from 1
  voidReason: string | null;
  statusChangedAt: string | null;
  /** The platform's Ed25519 signature of the digest, made at issue (R22); null before signing existed. */
  signature?: InvoiceSignature | null;
  /** When the tax service accepted the upload, kept only where the status no longer says it (a voided invoice). */
  uploadedAt?: string | null;
  /** A voided invoice's report to the tax service (作废上报); null for any other. */
  voidReport?: VoidReport | null;
}

export const GENESIS_HASH = '0'.repeat(64);

/**
 * The canonical text of an invoice's content: fixed key order, amounts as decimal fen strings.
 * Everything that is printed on the invoice is in it; nothing else is.
 */
export function canonicalContent(content: InvoiceContent): string {
  const party = (p: Party) => [p.name, p.taxId, p.address, p.phone, p.bank, p.account];
  return JSON.stringify([
    'fapiao/1',
    content.number,
    content.kind,
    content.issuedAt,
    content.pricesIncludeTax,
    content.remarks,
    content.issuer,
    party(content.seller),
    [...party(content.buyer), content.buyer.email],
    content.lines.map((l) => [l.name, l.taxCode, l.spec, l.unit, l.quantity, l.unitPrice, l.taxRate, String(l.amount), String(l.tax)]),
    String(content.totalAmount),
    String(content.totalTax),
    String(content.totalWithTax),
  ]);
}

export function contentDigest(content: InvoiceContent): string {
  return sha256(canonicalContent(content));
}

export function chainLink(prevHash: string, digest: string): string {
  return sha256(prevHash + digest);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The content of an invoice being issued: its draft with what issuing adds. Written field by field
 * (sealInvoice copies content through it too), not as `{ ...draft, number }`: Node 20's V8 gives an
 * object literal that adds properties after a spread a new hidden class every time, which cost
 * 5–18 µs per object on every invoice, much of it while the merchant's batch held the write lock.
 * A field added to the types must be added here too: TypeScript refuses a missing required one,
 * and test/unit/invoice-model.test.ts compares both results with the whole content.
 */
export function invoiceContent(draft: InvoiceDraft, issue: Pick<InvoiceContent, 'number' | 'issuedAt' | 'seller' | 'issuer'>): InvoiceContent {
  return {
    kind: draft.kind,
    pricesIncludeTax: draft.pricesIncludeTax,
    remarks: draft.remarks,
    buyer: draft.buyer,
    lines: draft.lines,
    totalAmount: draft.totalAmount,
    totalTax: draft.totalTax,
    totalWithTax: draft.totalWithTax,
    number: issue.number,
    issuedAt: issue.issuedAt,
    seller: issue.seller,
    issuer: issue.issuer,
  };
}

/** Seals issued content into the merchant's hash chain, signed by `sign` when given (R22). */
export function sealInvoice(
  merchantId: string,
  content: InvoiceContent,
  head: { hash: string; index: number },
  sign?: (digest: string) => InvoiceSignature,
): Invoice {
  const digest = contentDigest(content);
  // The content's fields as invoiceContent lists them, then what sealing adds: Object.assign onto a
  // fresh literal keeps its hidden class, unlike a spread followed by new properties.
  const invoice: Invoice = Object.assign(invoiceContent(content, content), {
    merchantId,
    status: 'issued' as const,
    digest,
    prevHash: head.hash,
    chainHash: chainLink(head.hash, digest),
    chainIndex: head.index + 1,
    voidReason: null,
    statusChangedAt: null,
  });
  if (sign) invoice.signature = sign(digest);
  return invoice;
}
