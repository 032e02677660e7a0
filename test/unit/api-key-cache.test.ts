// An instance keeps the API keys it has read only while it hears every revocation.
import { describe, expect, it } from 'vitest';
import { ApiKeyCache, type RevocationFeed } from '../../src/store/api-key-cache.js';
import type { ApiKeyRecord } from '../../src/app/ports.js';

const key: ApiKeyRecord = { id: 'k1', merchantId: 'm1', role: 'clerk', label: 'pos', secretHash: 'h', createdAt: '2026-12-02T10:00:00+08:00', revokedAt: null };

/** A feed the test drives by hand. */
function handFeed() {
  let handlers: Parameters<RevocationFeed['start']>[0] | undefined;
  const feed: RevocationFeed & { listening(on: boolean): void; revoked(): void; stopped: boolean } = {
    stopped: false,
    start: (h) => void (handlers = h),
    stop: async () => void (feed.stopped = true),
    listening: (on) => handlers!.listening(on),
    revoked: () => handlers!.revoked(),
  };
  return feed;
}

/** A database read that counts its calls and can be held open. */
function countingRead(found = true) {
  const read = Object.assign(async () => {
    read.calls++;
    await read.gate;
    return found ? key : undefined;
  }, { calls: 0, gate: Promise.resolve() as Promise<unknown> });
  return read;
}

/** A cache that has read its first key (which starts its feed) and now hears every revocation. */
async function listeningCache(now?: () => number) {
  const feed = handFeed();
  const cache = new ApiKeyCache(feed, now);
  const read = countingRead();
  await cache.get('k1', read);
  feed.listening(true);
  return { feed, cache, read };
}

describe('the API key cache', () => {
  it('reads every time until it is listening, then once', async () => {
    const feed = handFeed();
    const cache = new ApiKeyCache(feed);
    const read = countingRead();
    expect(await cache.get('k1', read)).toEqual(key);
    expect(await cache.get('k1', read)).toEqual(key);
    expect(read.calls).toBe(2);
    feed.listening(true);
    await cache.get('k1', read);
    await cache.get('k1', read);
    await cache.get('k1', read);
    expect(read.calls).toBe(3);
  });

  it('forgets every key on a revocation', async () => {
    const { feed, cache, read } = await listeningCache();
    await cache.get('k1', read);
    feed.revoked();
    await cache.get('k1', read);
    expect(read.calls).toBe(3);
  });

  it('does not keep a read that a revocation crossed', async () => {
    const feed = handFeed();
    const cache = new ApiKeyCache(feed);
    await cache.get('k1', countingRead());
    feed.listening(true);
    const read = countingRead();
    let open!: () => void;
    read.gate = new Promise<void>((resolve) => (open = resolve));
    const pending = cache.get('k1', read); // read before the revocation committed…
    feed.revoked(); // …and the revocation heard before the read returned
    open();
    await pending;
    read.gate = Promise.resolve();
    await cache.get('k1', read);
    expect(read.calls).toBe(2);
  });

  it('trusts nothing while it is not listening, and nothing from before', async () => {
    const { feed, cache, read } = await listeningCache();
    await cache.get('k1', read);
    feed.listening(false); // the connection dropped: revocations may go unheard now
    await cache.get('k1', read);
    await cache.get('k1', read);
    feed.listening(true); // back, but what was read before may have been revoked meanwhile
    await cache.get('k1', read);
    expect(read.calls).toBe(5);
  });

  it('reads a key again after a minute even when nothing was heard', async () => {
    let now = 0;
    const { cache, read } = await listeningCache(() => now);
    await cache.get('k1', read);
    now = 59_999;
    await cache.get('k1', read);
    now = 60_000;
    await cache.get('k1', read);
    expect(read.calls).toBe(3);
  });

  it('keeps no unknown key, and stops its feed when closed', async () => {
    const feed = handFeed();
    const cache = new ApiKeyCache(feed);
    const read = countingRead(false);
    await cache.get('nope', read);
    feed.listening(true);
    await cache.get('nope', read);
    await cache.get('nope', read);
    expect(read.calls).toBe(3);
    await cache.close();
    expect(feed.stopped).toBe(true);
  });
});
