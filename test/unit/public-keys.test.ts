// Public lookups check signatures with the platform's public keys, read from the database and
// read again when a signature names a key not seen yet (another instance may have just made it).
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PublicKeys } from '../../src/app/verify-invoice.js';
import type { SigningKeyRecord } from '../../src/app/document-ports.js';

function record(id: string): SigningKeyRecord {
  const { publicKey } = generateKeyPairSync('ed25519');
  return { id, algorithm: 'Ed25519', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), createdAt: '2026-12-02T10:00:00.000+08:00', retiredAt: null };
}

/** The database's keys, which the test adds to, and how often they were read. */
function database(...initial: SigningKeyRecord[]) {
  const db = { records: initial, reads: 0, load: async () => (db.reads++, [...db.records]) };
  return db;
}

describe('the public keys of signature checks', () => {
  it('finds a key made just after its last reload instead of calling it unknown', async () => {
    const db = database(record('k1'));
    const keys = new PublicKeys(db.load);
    expect(await keys.get('k1')).toBeDefined();
    db.records.push(record('k2')); // another instance rotates its key
    expect(await keys.get('k2')).toBeDefined();
    expect(db.reads).toBe(2);
  });

  it('shares one reload among lookups that arrive together', async () => {
    const db = database(record('k1'));
    const keys = new PublicKeys(db.load);
    await keys.get('k1');
    db.records.push(record('k2'));
    const found = await Promise.all(Array.from({ length: 5 }, () => keys.get('k2')));
    expect(found.every((key) => key !== undefined)).toBe(true);
    expect(db.reads).toBe(2);
  });

  it('reads the database at most once a second however many made-up key ids arrive', async () => {
    const db = database(record('k1'));
    const keys = new PublicKeys(db.load);
    await keys.get('k1');
    const started = Date.now();
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => keys.get(`made-up-${i}`)));
    expect(made.every((key) => key === undefined)).toBe(true);
    expect(db.reads).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // the second read waited for its turn
    await keys.get('made-up-again');
    expect(db.reads).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  });
});
