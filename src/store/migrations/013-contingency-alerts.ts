// When a contingency episode's `contingency.started` alert was raised. The alert now waits until the
// episode has lasted a while (src/app/contingency.ts), so that a single failed round among successes
// raises no started/ended pair. Episodes open at this migration were alerted when they began.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('upstream_state').addColumn('alerted_at', 'text').execute();
  await db.updateTable('upstream_state').set((eb) => ({ alerted_at: eb.ref('since') })).where('mode', '=', 'contingency').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('upstream_state').dropColumn('alerted_at').execute();
}
