// Alerts (预警): things a person should look at — a reconciliation difference, an upload conflict,
// an offline limit coming near. Raised inside the caller's transaction, so an alert exists exactly
// when the fact it reports was committed. Notification (webhook, email, SMS) reads from here.
import { authorize, type Caller } from '../domain/access.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { shanghaiTimestamp } from '../domain/time.js';
import type { Ports, Repositories } from './ports.js';
import type { AlertRecord, AlertSeverity } from './upstream-ports.js';

export interface AlertInput {
  merchantId: string;
  kind: string;
  severity: AlertSeverity;
  subject: string;
  detail?: Record<string, unknown>;
  /** Shanghai timestamp (shanghaiTimestamp(clock.now())). */
  at: string;
}

export async function raiseAlert(tx: Repositories, alert: AlertInput): Promise<number> {
  return tx.alerts.insert({ ...alert, detail: alert.detail ?? {} });
}

export interface AlertPage {
  items: AlertRecord[];
  nextCursor: string | null;
}

export async function listAlerts(ports: Ports, caller: Caller, query: { cursor?: string; kind?: string; unacknowledged?: boolean; limit?: number }): Promise<AlertPage> {
  authorize(caller, 'merchant.read');
  const limit = Math.min(Math.max(query.limit ?? 50, 1), 200);
  const beforeId = query.cursor === undefined ? undefined : Number(query.cursor);
  if (beforeId !== undefined && !(Number.isInteger(beforeId) && beforeId > 0)) throw new Fault(faults.FIELD_INVALID, { field: 'cursor', reason: bilingual('请使用上一页返回的 next_cursor', 'use next_cursor from the previous page') });
  const items = await ports.store.read.alerts.list(caller.merchantId, { beforeId, kind: query.kind, unacknowledged: query.unacknowledged }, limit + 1);
  return { items: items.slice(0, limit), nextCursor: items.length > limit ? String(items[limit - 1]!.id) : null };
}

export async function acknowledgeAlert(ports: Ports, caller: Caller, id: number): Promise<void> {
  authorize(caller, 'ops.read'); // owner, auditor, operator: the people on duty
  const done = await ports.store.write((tx) => tx.alerts.acknowledge(caller.merchantId, id, caller.actor, shanghaiTimestamp(ports.clock.now())));
  if (!done) {
    const exists = (await ports.store.read.alerts.list(caller.merchantId, { beforeId: id + 1 }, 1))[0]?.id === id;
    if (!exists) throw new Fault(faults.ALERT_NOT_FOUND, { id: String(id) });
  }
}
