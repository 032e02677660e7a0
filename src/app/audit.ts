// Appends to the merchant's hash-chained audit log inside the caller's transaction.
import type { AuditEntry, ChainHead, Repositories } from './ports.js';
import type { Clock } from '../domain/time.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { auditHash, auditScope } from '../domain/audit-chain.js';

export interface AuditRecord {
  merchantId: string;
  actor: string;
  action: string;
  subject: string;
  detail?: Record<string, unknown>;
}

export async function recordAudit(tx: Repositories, clock: Clock, record: AuditRecord): Promise<void> {
  const [head] = await tx.chain.heads([auditScope(record.merchantId)]);
  await tx.chain.advance([await appendAudit(tx, shanghaiTimestamp(clock.now()), [record], head!)]);
}

/** The entries after `head`, each chained to the one before, and the chain's head after them. */
export function chainAudit(at: string, records: readonly AuditRecord[], head: ChainHead): { entries: AuditEntry[]; head: ChainHead } {
  const entries: AuditEntry[] = [];
  let last = head;
  for (const record of records) {
    // One object whose hash is filled in once known, not `{ ...fields, hash }`: see invoiceContent (invoice.ts).
    const entry: AuditEntry = {
      merchantId: record.merchantId, at, actor: record.actor, action: record.action, subject: record.subject, detail: JSON.stringify(record.detail ?? {}),
      prevHash: last.hash, hash: '',
    };
    entry.hash = auditHash(last.hash, entry);
    entries.push(entry);
    last = { scope: last.scope, hash: entry.hash, index: last.index + 1 };
  }
  return { entries, head: last };
}

/**
 * Writes the entries after `head`, many rows per statement, and returns the chain's new head, for
 * a caller that advances several chains in one statement.
 */
export async function appendAudit(tx: Repositories, at: string, records: readonly AuditRecord[], head: ChainHead): Promise<ChainHead> {
  const chained = chainAudit(at, records, head);
  await tx.audit.append(chained.entries);
  return chained.head;
}
