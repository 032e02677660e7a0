// On PostgreSQL each instance keeps the API keys it has read, and drops them when any instance
// revokes one: at once on the instance that revoked it, within moments on the others (NOTIFY).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticateApiKey, createApiKey, revokeApiKey } from '../../src/app/api-keys.js';
import type { Ports, Store } from '../../src/app/ports.js';
import { Fault, faults } from '../../src/domain/faults.js';
import { systemClock } from '../../src/domain/time.js';
import { openStore } from '../../src/store/database.js';
import { postgres, type OpenedStore } from '../support/stores.js';
import { until } from '../support/until.js';

const url = process.env.TEST_DATABASE_URL;
const owner = { merchantId: 'm_a', role: 'owner' as const, actor: 'test' };

describe.skipIf(!url)('API keys on several PostgreSQL instances', () => {
  let opened: OpenedStore;
  let other: Store;
  let otherDir: string;
  let one: Ports;
  let two: Ports;

  beforeEach(async () => {
    opened = await postgres(url!).open();
    const { db, schema } = opened.connect();
    await db.destroy();
    otherDir = mkdtempSync(join(tmpdir(), 'fapiao-test-'));
    other = await openStore({ dataDir: otherDir, databaseUrl: url!, schema }, { migrate: false });
    one = { store: opened.store, clock: systemClock } as Ports;
    two = { store: other, clock: systemClock } as Ports;
    await opened.store.write((tx) =>
      tx.merchants.insert({
        id: 'm_a', name: '商户 A', taxId: '91310000MA1FL8XQ30', address: '上海市', phone: '021-00000000', bank: '银行', account: '1',
        regionCode: '31', dailyInvoiceLimit: null, operatorCreditFen: null, grantedCreditFen: null, createdAt: '2026-11-01T00:00:00.000+08:00',
      }),
    );
  });
  afterEach(async () => {
    await other?.close();
    rmSync(otherDir, { recursive: true, force: true });
    await opened?.cleanup();
  });

  const accepted = (ports: Ports, key: string) => authenticateApiKey(ports, `Bearer ${key}`).then(() => true, (error: unknown) => {
    if (error instanceof Fault && error.spec === faults.API_KEY_INVALID) return false;
    throw error;
  });

  /** Revokes the key in the database behind every instance's back (no notification). */
  const revokeBehindTheBack = (id: string, revoked: boolean) =>
    opened.exec(`update api_keys set revoked_at = ${revoked ? "'2026-12-02T10:00:00.000+08:00'" : 'null'} where id = '${id}'`);

  /**
   * A new key that `ports` answers for from memory: once read, a revocation made behind its back
   * is not seen. (Keys read before the instance listened were not kept: then another is tried.)
   */
  const keyServedFromMemory = (ports: Ports) =>
    until('a key served from memory', async () => {
      const created = await createApiKey(one, { merchantId: 'm_a', role: 'clerk', label: 'pos' });
      expect(await accepted(ports, created.key)).toBe(true);
      await revokeBehindTheBack(created.record.id, true);
      const remembered = await accepted(ports, created.key);
      await revokeBehindTheBack(created.record.id, false);
      return remembered ? created : undefined;
    }, 10_000);

  it('a key revoked on one instance is refused there at once and by the others within moments', async () => {
    const { key, record } = await keyServedFromMemory(two);
    expect(await accepted(one, key)).toBe(true);
    expect(await accepted(two, key)).toBe(true);

    await revokeApiKey(one, owner, record.id);
    expect(await accepted(one, key)).toBe(false);
    const revokedAt = performance.now();
    await until('the other instance refuses the revoked key', async () => ((await accepted(two, key)) ? undefined : true), 2_000, 1);
    expect(performance.now() - revokedAt).toBeLessThan(1_000);
  });

  it('hears revocations again after its listening connection was cut', async () => {
    const { key, record } = await keyServedFromMemory(two);

    // Cut every listening connection (this run's other stores reconnect just the same).
    await opened.exec("select pg_terminate_backend(pid) from pg_stat_activity where query = 'listen fapiao_api_key_revoked' and pid <> pg_backend_pid()");
    // Back to trusting memory only once listening again, then a revocation elsewhere is heard.
    await keyServedFromMemory(two);
    expect(await accepted(two, key)).toBe(true);
    await revokeApiKey(one, owner, record.id);
    await until('the other instance refuses the revoked key', async () => ((await accepted(two, key)) ? undefined : true), 2_000, 1);
  });
});
