// Appends to the merchant's hash-chained audit log inside the caller's transaction.
import type { ChainHead, Repositories } from './ports.js';
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
  await tx.chain.advance([await appendAudit(tx, clock, record, head!)]);
}

/**
 * Writes the entry after `head` and returns the chain's new head, for a caller that advances
 * several chains in one statement (issuing advances the invoice chain and the audit chain).
 */
export async function appendAudit(tx: Repositories, clock: Clock, record: AuditRecord, head: ChainHead): Promise<ChainHead> {
  const fields = {
    merchantId: record.merchantId,
    at: shanghaiTimestamp(clock.now()),
    actor: record.actor,
    action: record.action,
    subject: record.subject,
    detail: JSON.stringify(record.detail ?? {}),
  };
  const hash = auditHash(head.hash, fields);
  await tx.audit.append({ ...fields, prevHash: head.hash, hash });
  return { scope: head.scope, hash, index: head.index + 1 };
}
