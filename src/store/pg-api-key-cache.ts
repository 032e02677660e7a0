// PostgreSQL's revocation feed for the API key cache (api-key-cache.ts): a revocation commits with a
// NOTIFY, and each instance LISTENs on a connection of its own. The instance that revoked a key
// drops its keys as soon as its transaction commits; the others as soon as PostgreSQL delivers the
// notification (milliseconds). While the listening connection is down (the database away, a
// failover) nothing is trusted.
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import type { Repositories } from '../app/ports.js';
import { announcingRevocations, type RevocationFeed } from './api-key-cache.js';
import type { Database } from './schema.js';

export const API_KEY_REVOKED_CHANNEL = 'fapiao_api_key_revoked';
/** How long the listener waits before connecting again after losing its connection. */
const RECONNECT_MS = 1_000;

/** LISTEN on a connection of its own, made again a second after it is lost. */
export function postgresRevocationFeed(newClient: () => pg.Client): RevocationFeed {
  let current: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  return {
    start(handlers) {
      const connect = async () => {
        if (stopped) return;
        const client = newClient();
        current = client;
        const lost = () => {
          if (current !== client) return; // already handled ('error' and 'end' both come)
          current = undefined;
          handlers.listening(false);
          client.end().catch(() => {});
          if (!stopped) retry = setTimeout(connect, RECONNECT_MS);
        };
        client.on('error', lost);
        client.on('end', lost);
        client.on('notification', (notice) => {
          if (notice.channel === API_KEY_REVOKED_CHANNEL) handlers.revoked();
        });
        try {
          await client.connect();
          await client.query(`listen ${API_KEY_REVOKED_CHANNEL}`);
          if (current === client) handlers.listening(true);
        } catch {
          lost();
        }
      };
      void connect();
    },
    async stop() {
      stopped = true;
      clearTimeout(retry);
      const client = current;
      current = undefined;
      await client?.end().catch(() => {});
    },
  };
}

/**
 * A transaction's repositories whose revocations also NOTIFY every instance (delivered when the
 * transaction commits); `revokedHere` is called for each so the caller can drop it after the commit.
 */
export function notifyingRevocations(repositories: Repositories, trx: Kysely<Database>, revokedHere: () => void): Repositories {
  return announcingRevocations(repositories, async (id) => {
    await sql`select pg_notify(${API_KEY_REVOKED_CHANNEL}, ${id})`.execute(trx);
    revokedHere();
  });
}
