// SQLite's revocation feed for the API key cache (api-key-cache.ts). The processes sharing a data
// directory have no channel between them but the directory itself, so a revocation appends a line to
// a file there, and every lookup first looks at the file (one stat, about a microsecond): any change
// in it empties the cache. Unlike a notification, nothing is in flight: once the revoking process
// has appended, the next lookup anywhere reads the key again.
//
// The line is appended twice, before the revoking transaction commits and after. After: so a key read
// while the transaction ran is dropped. Before: so that a process that dies between its commit and
// the second line leaves a stale key behind only if another process read that very key in the
// moment between the first line and the commit, and then for at most the cache's minute.
import { appendFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Repositories } from '../app/ports.js';
import { announcingRevocations, type RevocationFeed } from './api-key-cache.js';

export function apiKeyRevocationsFile(dataDir: string): string {
  return join(dataDir, 'api-key-revocations');
}

/** Appends a revocation's line (which creates the file the first time). */
export function signalRevocation(file: string): void {
  appendFileSync(file, `${new Date().toISOString()}\n`);
}

/**
 * Heard while the file can be read: each lookup compares its identity, size and modification time
 * with the last seen. A file that cannot be read (removed, a disk error) is not heard, and nothing
 * is trusted until it can be read again.
 */
export function fileRevocationFeed(file: string): RevocationFeed {
  let handlers: Parameters<RevocationFeed['start']>[0] | undefined;
  let seen: string | undefined;
  const look = () => {
    let now: string | undefined;
    try {
      const stat = statSync(file, { bigint: true, throwIfNoEntry: false });
      now = stat && `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}`;
    } catch {
      now = undefined;
    }
    if (now === seen) return;
    seen = now;
    handlers?.listening(now !== undefined); // either way a change: the cache forgets what it holds
  };
  return {
    start(h) {
      handlers = h;
      try {
        appendFileSync(file, ''); // creates it, so that a store with no revocation yet is heard
      } catch {
        // not heard until it can be made: every lookup reads its key
      }
      look();
    },
    check: look,
    async stop() {
      handlers = undefined;
    },
  };
}

/** A transaction's repositories whose revocations append to the file; `revokedHere` is called for each so the caller appends again after the commit. */
export function signallingRevocations(repositories: Repositories, file: string, revokedHere: () => void): Repositories {
  return announcingRevocations(repositories, () => {
    signalRevocation(file);
    revokedHere();
  });
}
