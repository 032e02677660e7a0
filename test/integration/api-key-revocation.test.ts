// Each instance keeps the API keys it has read, and drops them when any instance revokes one: on
// PostgreSQL at once where it was revoked and within moments elsewhere (NOTIFY); on SQLite at once
// in every process sharing the data directory (a file there that every lookup looks at).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { authenticateApiKey, createApiKey, revokeApiKey } from '../../src/app/api-keys.js';
import type { Ports, Store } from '../../src/app/ports.js';
import { Fault, faults } from '../../src/domain/faults.js';
import { systemClock } from '../../src/domain/time.js';
import { apiKeyRevocationsFile } from '../../src/store/sqlite-api-key-revocations.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { until } from '../support/until.js';

const owner = { merchantId: 'm_a', role: 'owner' as const, actor: 'test' };

describe.each(storesUnderTest)('API keys on several instances ($name)', (kind) => {
  let opened: OpenedStore;
  let other: Store;
  let one: Ports;
  let two: Ports;

  beforeEach(async () => {
    opened = await kind.open();
    other = await opened.reopen();
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
    await opened?.cleanup();
  });

  const accepted = (ports: Ports, key: string) => authenticateApiKey(ports, `Bearer ${key}`).then(() => true, (error: unknown) => {
    if (error instanceof Fault && error.spec === faults.API_KEY_INVALID) return false;
    throw error;
  });

  /** Revokes the key in the database behind every instance's back (no notification, no line in the file). */
  const revokeBehindTheBack = (id: string, revoked: boolean) =>
    opened.exec(`update api_keys set revoked_at = ${revoked ? "'2026-12-02T10:00:00.000+08:00'" : 'null'} where id = '${id}'`);

  /** Whether `ports` answers for the key from memory: a revocation made behind its back is not seen. */
  const servedFromMemory = async (ports: Ports, key: { key: string; record: { id: string } }) => {
    expect(await accepted(ports, key.key)).toBe(true);
    await revokeBehindTheBack(key.record.id, true);
    const remembered = await accepted(ports, key.key);
    await revokeBehindTheBack(key.record.id, false);
    return remembered;
  };

  /** A new key that `ports` answers for from memory. (Keys read before a PostgreSQL instance listened were not kept: then another is tried.) */
  const keyServedFromMemory = (ports: Ports) =>
    until('a key served from memory', async () => {
      const created = await createApiKey(one, { merchantId: 'm_a', role: 'clerk', label: 'pos' });
      return (await servedFromMemory(ports, created)) ? created : undefined;
    }, 10_000);

  it('a key revoked on one instance is refused there at once and by the others within moments', async () => {
    const { key, record } = await keyServedFromMemory(two);
    expect(await accepted(one, key)).toBe(true);
    expect(await accepted(two, key)).toBe(true);

    await revokeApiKey(one, owner, record.id);
    expect(await accepted(one, key)).toBe(false);
    if (kind.name === 'sqlite') expect(await accepted(two, key)).toBe(false); // nothing in flight: at once
    const revokedAt = performance.now();
    await until('the other instance refuses the revoked key', async () => ((await accepted(two, key)) ? undefined : true), 2_000, 1);
    expect(performance.now() - revokedAt).toBeLessThan(1_000);
  });

  it.runIf(kind.name === 'postgres')('hears revocations again after its listening connection was cut', async () => {
    const { key, record } = await keyServedFromMemory(two);

    // Cut every listening connection (this run's other stores reconnect just the same).
    await opened.exec("select pg_terminate_backend(pid) from pg_stat_activity where query = 'listen fapiao_api_key_revoked' and pid <> pg_backend_pid()");
    // Back to trusting memory only once listening again, then a revocation elsewhere is heard.
    await keyServedFromMemory(two);
    expect(await accepted(two, key)).toBe(true);
    await revokeApiKey(one, owner, record.id);
    await until('the other instance refuses the revoked key', async () => ((await accepted(two, key)) ? undefined : true), 2_000, 1);
  });

  it.runIf(kind.name === 'sqlite')('trusts nothing while the revocation file is gone, and trusts again once a revocation makes it anew', async () => {
    const kept = await keyServedFromMemory(two);
    const spare = await createApiKey(one, { merchantId: 'm_a', role: 'clerk', label: 'spare' });

    rmSync(apiKeyRevocationsFile(opened.dataDir));
    expect(await servedFromMemory(two, kept)).toBe(false);
    expect(await servedFromMemory(two, kept)).toBe(false);

    await revokeApiKey(one, owner, spare.record.id); // writes the file again
    expect(await accepted(two, spare.key)).toBe(false);
    expect(await servedFromMemory(two, kept)).toBe(true);
  });
});
