// Periodic clean-up. Idempotency keys are kept for 48 hours (the promise is at least 24), expired
// sessions are removed. Safe to run on every instance at once: both are plain deletes.
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import type { Ports } from './ports.js';

export const IDEMPOTENCY_KEY_RETENTION_HOURS = 48;

export async function purgeExpired(ports: Ports): Promise<{ idempotencyKeys: number; sessions: number; verificationCounts: number }> {
  const now = ports.clock.now();
  const keyCutoff = shanghaiTimestamp(new Date(now.getTime() - IDEMPOTENCY_KEY_RETENTION_HOURS * 3600_000));
  const idempotencyKeys = await ports.store.write((tx) => tx.idempotency.purgeBefore(keyCutoff));
  const sessions = await ports.store.write((tx) => tx.sessions.purgeExpired(shanghaiTimestamp(now)));
  // Verification counters matter for their own day only (5 per invoice per day); yesterday's stay a day.
  const verificationCounts = await ports.store.write((tx) => tx.verification.purgeBefore(shanghaiDate(new Date(now.getTime() - 24 * 3600_000))));
  return { idempotencyKeys, sessions, verificationCounts };
}
