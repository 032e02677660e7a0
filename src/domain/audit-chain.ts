// The audit log (R53) is hash-chained per merchant like the invoices, so an entry changed or
// removed behind the application's back breaks the chain.
import { chainLink, sha256 } from './invoice.js';

export interface AuditFields {
  merchantId: string;
  at: string;
  actor: string;
  action: string;
  subject: string;
  detail: string;
}

export function auditHash(prevHash: string, entry: AuditFields): string {
  const digest = sha256(JSON.stringify([entry.merchantId, entry.at, entry.actor, entry.action, entry.subject, entry.detail]));
  return chainLink(prevHash, digest);
}

export function auditScope(merchantId: string): string {
  return `audit:${merchantId}`;
}

export function invoiceChainScope(merchantId: string): string {
  return `invoices:${merchantId}`;
}
