// On PostgreSQL every API call began with a round trip to read its key. Each instance now keeps the
// keys it has read, but trusts them only while it hears every revocation: a revocation commits
// with a NOTIFY, and each instance LISTENs on a connection of its own. The instance that revoked
// a key drops it as soon as its transaction commits; the others as soon as PostgreSQL delivers the
// notification (milliseconds). While the listening connection is down (the database away, a
// failover) nothing is trusted and every call reads its key again, as before.
//
// Any revocation empties the whole cache: they are rare, and a key read at the moment one crossed
// it is then never kept by mistake.
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import type { ApiKeyRecord, Repositories } from '../app/ports.js';
import type { Database } from './schema.js';

export const API_KEY_REVOKED_CHANNEL = 'fapiao_api_key_revoked';
/** Even while every revocation is heard, a key is read again after this long, so a change made behind Fapiao's back (SQL by hand) is seen within it. */
const MAX_AGE_MS = 60_000;
/** How long the listener waits before connecting again after losing its connection. */
const RECONNECT_MS = 1_000;

/** How a cache hears of revocations (PostgreSQL's LISTEN in production). */
export interface RevocationFeed {
  /** Starts listening: `revoked` for every revocation heard, `listening(true)` once listening, `listening(false)` whenever that stops. */
  start(handlers: { revoked(): void; listening(on: boolean): void }): void;
  stop(): Promise<void>;
}

interface Entry {
  record: ApiKeyRecord;
  epoch: number;
  readAt: number;
}

export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>();
  /** Changes on every revocation and whenever listening starts or stops: entries and reads from another epoch are not trusted. */
  private epoch = 0;
  private listening = false;
  private started = false;

  constructor(private readonly feed: RevocationFeed, private readonly now: () => number = () => performance.now()) {}

  async get(id: string, read: () => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    this.start();
    const cached = this.entries.get(id);
    if (cached && this.listening && cached.epoch === this.epoch && this.now() - cached.readAt < MAX_AGE_MS) return cached.record;
    const epoch = this.epoch;
    const readAt = this.now();
    const record = await read();
    if (record && this.listening && epoch === this.epoch) this.entries.set(id, { record, epoch, readAt });
    return record;
  }

  /** A revocation, heard or committed here. */
  revoked(): void {
    this.entries.clear();
    this.epoch++;
  }

  async close(): Promise<void> {
    this.listen(false);
    if (this.started) await this.feed.stop();
  }

  private start(): void {
    if (this.started) return;
    this.started = true; // on first use, so a CLI command that never authenticates opens no extra connection
    this.feed.start({ revoked: () => this.revoked(), listening: (on) => this.listen(on) });
  }

  private listen(on: boolean): void {
    this.listening = on;
    this.revoked();
  }
}

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
  return {
    ...repositories,
    apiKeys: {
      ...repositories.apiKeys,
      async revoke(merchantId, id, at) {
        const revoked = await repositories.apiKeys.revoke(merchantId, id, at);
        if (revoked) {
          await sql`select pg_notify(${API_KEY_REVOKED_CHANNEL}, ${id})`.execute(trx);
          revokedHere();
        }
        return revoked;
      },
    },
  };
}
