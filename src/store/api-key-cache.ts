// Every API call began by reading its key from the database: a round trip on PostgreSQL, and on
// SQLite a read that starts cold, because another process's commit empties the reader's page cache
// (29 µs a call, about 5 % of an invoice's server time). Each process now keeps the keys it has
// read, but trusts them only while it hears every revocation, through a feed of the store's own:
// NOTIFY on PostgreSQL (pg-api-key-cache.ts), a file in the data directory on SQLite
// (sqlite-api-key-revocations.ts). While a feed is not heard, nothing is trusted and every call
// reads its key, as before.
//
// Any revocation empties the whole cache: they are rare, and a key read at the moment one crossed
// it is then never kept by mistake.
import type { ApiKeyRecord, Repositories } from '../app/ports.js';

/** Even while every revocation is heard, a key is read again after this long, so a change made behind Fapiao's back (SQL by hand) is seen within it. */
const MAX_AGE_MS = 60_000;

/** How a cache hears of revocations. */
export interface RevocationFeed {
  /** Starts listening: `revoked` for every revocation heard, `listening(true)` once listening, `listening(false)` whenever that stops. */
  start(handlers: { revoked(): void; listening(on: boolean): void }): void;
  stop(): Promise<void>;
  /** For a feed that is looked at rather than told: called before every lookup, it calls the handlers for whatever changed since. */
  check?(): void;
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
    this.feed.check?.();
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


/** A transaction's repositories that call `revoked` (inside the transaction) after each revocation that changed a key, for the store to tell the others. */
export function announcingRevocations(repositories: Repositories, revoked: (id: string) => Promise<void> | void): Repositories {
  return {
    ...repositories,
    apiKeys: {
      ...repositories.apiKeys,
      async revoke(merchantId, id, at) {
        const changed = await repositories.apiKeys.revoke(merchantId, id, at);
        if (changed) await revoked(id);
        return changed;
      },
    },
  };
}
