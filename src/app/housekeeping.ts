// Periodic clean-up. Idempotency keys are kept for 48 hours (the promise is at least 24), expired
// sessions are removed. Safe to run on every instance at once: both are plain deletes.
import { shanghaiTimestamp } from '../domain/time.js';
import type { Ports } from './ports.js';

export const IDEMPOTENCY_KEY_RETENTION_HOURS = 48;

export async function purgeExpired(ports: Ports): Promise<{ idempotencyKeys: number; sessions: number }> {
  const now = ports.clock.now();
  const keyCutoff = shanghaiTimestamp(new Date(now.getTime() - IDEMPOTENCY_KEY_RETENTION_HOURS * 3600_000));
  const idempotencyKeys = await ports.store.write((tx) => tx.idempotency.purgeBefore(keyCutoff));
  const sessions = await ports.store.write((tx) => tx.sessions.purgeExpired(shanghaiTimestamp(now)));
  return { idempotencyKeys, sessions };
}
