// Appends to the merchant's hash-chained audit log inside the caller's transaction.
import type { Repositories } from './ports.js';
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
  const scope = auditScope(record.merchantId);
  const head = await tx.chain.head(scope);
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
  await tx.chain.advance(scope, { hash, index: head.index + 1 });
}
