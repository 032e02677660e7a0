// Identity: users, login with lockout, sessions, API keys, and the password hasher's CPU bound.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authenticateApiKey, createApiKey, listApiKeys, revokeApiKey } from '../../src/app/api-keys.js';
import { authenticateSession, lockSeconds, login, logout } from '../../src/app/login.js';
import type { Ports, Store } from '../../src/app/ports.js';
import { addUser } from '../../src/app/users.js';
import type { Caller } from '../../src/domain/access.js';
import { Fault } from '../../src/domain/faults.js';
import type { Clock } from '../../src/domain/time.js';
import { argon2Hasher, type PasswordHasher } from '../../src/security/passwords.js';
import { storesUnderTest } from '../support/stores.js';

const PASSWORD = 'correct horse battery';
const code = { FIELD_INVALID: 1003, LOGIN_FAILED: 2001, ACCOUNT_LOCKED: 2002, AUTH_REQUIRED: 2003, API_KEY_INVALID: 2004, SESSION_EXPIRED: 2005, PERMISSION_DENIED: 2006, USER_EXISTS: 2007, PASSWORD_TOO_WEAK: 2008, MERCHANT_NOT_FOUND: 3006, SERVER_BUSY: 7001 };

class TestClock implements Clock {
  constructor(private at: number) {}
  now(): Date {
    return new Date(this.at);
  }
  advance(seconds: number): void {
    this.at += seconds * 1000;
  }
}

/** Small costs keep the suite fast; the rules under test do not depend on them. */
function fastHasher(limits: { maxConcurrent?: number; maxQueued?: number } = {}): PasswordHasher {
  return argon2Hasher({ memoryCost: 1024, timeCost: 1, ...limits });
}

/** Counts verifications, to see that unknown users and locked accounts are handled as claimed. */
function counting(inner: PasswordHasher): PasswordHasher & { verifications: number } {
  const hasher = {
    verifications: 0,
    hash: (password: string) => inner.hash(password),
    verify: (hash: string, password: string) => {
      hasher.verifications++;
      return inner.verify(hash, password);
    },
  };
  return hasher;
}

async function faultOf(promise: Promise<unknown>): Promise<Fault> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(Fault);
  return error as Fault;
}

async function addMerchant(store: Store, id: string, taxId: string): Promise<void> {
  await store.write((tx) =>
    tx.merchants.insert({
      id, name: `商户 ${id}`, taxId, address: '上海市', phone: '021-00000000', bank: '银行', account: '1',
      regionCode: '31', dailyInvoiceLimit: null, operatorCreditFen: null, grantedCreditFen: null, createdAt: '2026-11-01T00:00:00.000+08:00',
    }),
  );
}

for (const s of storesUnderTest) {
  describe(s.name, () => {
    let store: Store;
    let dataDir: string;
    let cleanup: () => Promise<void>;
    let clock: TestClock;
    let hasher: ReturnType<typeof counting>;
    let ports: Ports & { passwords: PasswordHasher };

    beforeEach(async () => {
      ({ store, dataDir, cleanup } = await s.open());
      clock = new TestClock(Date.parse('2026-11-22T02:00:00Z'));
      hasher = counting(fastHasher());
      ports = { store, clock, passwords: hasher };
      await addMerchant(store, 'm_a', '91310000MA1FL8XQ30');
      await addMerchant(store, 'm_b', '91110000600037341L');
    });
    afterEach(() => cleanup());

    const owner = (merchantId: string): Caller => ({ merchantId, role: 'owner', actor: 'boss' });
    const auditActions = async (merchantId: string) => (await store.read.audit.page(merchantId, 0, 100)).map((e) => e.action);
    const loginFault = (password: string, username = 'alice') => faultOf(login(ports, { username, password }));

    describe('adding users', () => {
      it('stores an argon2id hash, never the password, and audits the addition', async () => {
        const user = await addUser(ports, { merchantId: 'm_a', username: 'alice', password: PASSWORD, role: 'clerk' });
        expect(user.id).toMatch(/^u_[0-9a-f]+$/);
        const stored = await store.read.users.findByUsername('alice');
        expect(stored?.passwordHash).toMatch(/^\$argon2id\$/);
        expect(stored?.passwordHash).not.toContain(PASSWORD);
        expect(await auditActions('m_a')).toEqual(['user.added']);
      });

      it.each([
        ['ab', PASSWORD, 'm_a', code.FIELD_INVALID],
        ['has space', PASSWORD, 'm_a', code.FIELD_INVALID],
        ['x'.repeat(65), PASSWORD, 'm_a', code.FIELD_INVALID],
        ['bob', 'short pw', 'm_a', code.PASSWORD_TOO_WEAK],
        ['bob', PASSWORD, 'm_none', code.MERCHANT_NOT_FOUND],
      ])('refuses user %s / password %s / merchant %s with %i', async (username, password, merchantId, expected) => {
        expect((await faultOf(addUser(ports, { merchantId, username, password, role: 'clerk' }))).code).toBe(expected);
      });

      it('refuses a user name that is taken, across merchants', async () => {
        await addUser(ports, { merchantId: 'm_a', username: 'alice', password: PASSWORD, role: 'clerk' });
        const fault = await faultOf(addUser(ports, { merchantId: 'm_b', username: 'alice', password: PASSWORD, role: 'owner' }));
        expect(fault.code).toBe(code.USER_EXISTS);
        expect(fault.params).toEqual({ username: 'alice' });
      });
    });

    describe('login', () => {
      beforeEach(() => addUser(ports, { merchantId: 'm_a', username: 'alice', password: PASSWORD, role: 'clerk' }));

      it('opens a 12-hour session that authenticates as the user', async () => {
        const { token, expiresAt } = await login(ports, { username: 'alice', password: PASSWORD });
        expect(Date.parse(expiresAt) - clock.now().getTime()).toBe(12 * 3600 * 1000);
        expect(await authenticateSession(ports, token)).toEqual({ merchantId: 'm_a', role: 'clerk', actor: 'alice' });
      });

      it('answers wrong password, unknown user, locked and busy with distinct codes', async () => {
        expect((await loginFault('wrong password')).code).toBe(code.LOGIN_FAILED);
        expect((await loginFault(PASSWORD, 'nobody')).code).toBe(code.LOGIN_FAILED);
        for (let i = 0; i < 4; i++) await loginFault('wrong password');
        expect((await loginFault('wrong password')).code).toBe(code.ACCOUNT_LOCKED);

        // Carol's hash is costly to verify, so the two logins are sure to overlap however fast the
        // database answers the user lookup that comes first.
        ports.passwords = argon2Hasher({ memoryCost: 65536, timeCost: 3, maxConcurrent: 1, maxQueued: 0 });
        await addUser(ports, { merchantId: 'm_a', username: 'carol', password: PASSWORD, role: 'clerk' });
        const answers = await Promise.allSettled([login(ports, { username: 'carol', password: 'wrong password' }), login(ports, { username: 'carol', password: 'wrong password' })]);
        const codes = answers.map((a) => (a.status === 'rejected' ? (a.reason as Fault).code : 0)).sort();
        expect(codes).toEqual([code.LOGIN_FAILED, code.SERVER_BUSY]);
        // Being turned away for load is not a guess: only one failure was counted.
        expect((await store.read.users.findByUsername('carol'))?.failedAttempts).toBe(1);
      });

      it('still verifies a password for an unknown user, so timing does not reveal who exists', async () => {
        const before = hasher.verifications;
        await loginFault(PASSWORD, 'nobody');
        expect(hasher.verifications).toBe(before + 1);
      });

      it('locks from the 5th failure, doubling the lock, and lets the user in once the clock has moved on', async () => {
        for (let i = 1; i <= 4; i++) expect((await loginFault('wrong password')).code).toBe(code.LOGIN_FAILED);
        const first = await loginFault('wrong password');
        expect(first.code).toBe(code.ACCOUNT_LOCKED);
        expect(first.params).toEqual({ seconds: '30' });
        expect(first.retryAfterSeconds).toBe(30);

        clock.advance(29);
        expect((await loginFault('wrong password')).params).toEqual({ seconds: '1' }); // refused unverified, uncounted
        clock.advance(1);
        expect((await loginFault('wrong password')).params).toEqual({ seconds: '60' }); // 6th failure
        clock.advance(60);
        expect((await loginFault('wrong password')).params).toEqual({ seconds: '120' }); // 7th failure
        clock.advance(120);
        await login(ports, { username: 'alice', password: PASSWORD });
        expect(await auditActions('m_a')).toEqual(['user.added', 'user.locked', 'user.locked', 'user.locked']);
      });

      it('refuses the correct password during a lock without verifying it', async () => {
        for (let i = 0; i < 5; i++) await loginFault('wrong password');
        const before = hasher.verifications;
        const fault = await loginFault(PASSWORD);
        expect(fault.code).toBe(code.ACCOUNT_LOCKED);
        expect(hasher.verifications).toBe(before);
      });

      it('resets the count after a success', async () => {
        for (let i = 0; i < 4; i++) await loginFault('wrong password');
        await login(ports, { username: 'alice', password: PASSWORD });
        expect(await store.read.users.findByUsername('alice')).toMatchObject({ failedAttempts: 0, lockedUntil: null });
        for (let i = 0; i < 4; i++) expect((await loginFault('wrong password')).code).toBe(code.LOGIN_FAILED);
      });

      it('caps the lock at one hour', async () => {
        expect([4, 5, 6, 7, 11, 12, 13, 1000].map(lockSeconds)).toEqual([0, 30, 60, 120, 1920, 3600, 3600, 3600]);
        const alice = await store.read.users.findByUsername('alice');
        await store.write((tx) => tx.users.setLoginState(alice!.id, { failedAttempts: 40, lockedUntil: null }));
        expect((await loginFault('wrong password')).params).toEqual({ seconds: '3600' });
      });

      it('ends sessions after 12 hours', async () => {
        const { token } = await login(ports, { username: 'alice', password: PASSWORD });
        clock.advance(12 * 3600 - 1);
        await authenticateSession(ports, token);
        clock.advance(1);
        expect((await faultOf(authenticateSession(ports, token))).code).toBe(code.SESSION_EXPIRED);
      });

      it('ends a session on logout', async () => {
        const { token } = await login(ports, { username: 'alice', password: PASSWORD });
        await logout(ports, token);
        expect((await faultOf(authenticateSession(ports, token))).code).toBe(code.SESSION_EXPIRED);
      });

      it('asks for a login without a token and refuses an unknown one', async () => {
        expect((await faultOf(authenticateSession(ports, undefined))).code).toBe(code.AUTH_REQUIRED);
        expect((await faultOf(authenticateSession(ports, 'made-up'))).code).toBe(code.SESSION_EXPIRED);
      });
    });

    describe('API keys', () => {
      it('authenticates a key as its merchant and role, with the label as actor', async () => {
        const { key, record } = await createApiKey(ports, { merchantId: 'm_a', role: 'clerk', label: 'shop till' });
        expect(key).toMatch(/^fpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
        const expected = { merchantId: 'm_a', role: 'clerk', actor: 'apikey:shop till', keyId: record.id };
        expect(await authenticateApiKey(ports, key)).toEqual(expected);
        expect(await authenticateApiKey(ports, `Bearer ${key}`)).toEqual(expected);
      });

      it('refuses a tampered, malformed or revoked key', async () => {
        const { key, record } = await createApiKey(ports, { merchantId: 'm_a', role: 'clerk', label: 'till' });
        const flipLast = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
        const otherId = `fpk_${'0'.repeat(16)}${key.slice(20)}`;
        for (const bad of [flipLast, otherId, key.slice(0, -1), 'fpk_nonsense']) {
          expect((await faultOf(authenticateApiKey(ports, bad))).code).toBe(code.API_KEY_INVALID);
        }
        await revokeApiKey(ports, owner('m_a'), record.id);
        expect((await faultOf(authenticateApiKey(ports, key))).code).toBe(code.API_KEY_INVALID);
        expect(await auditActions('m_a')).toEqual(['apikey.created', 'apikey.revoked']);
      });

      it('keeps no secret in the database', async () => {
        const { key, record } = await createApiKey(ports, { merchantId: 'm_a', role: 'clerk', label: 'till' });
        const secret = key.slice(`fpk_${record.id}_`.length);
        const row = await store.read.apiKeys.get(record.id);
        expect(row?.secretHash).toMatch(/^[0-9a-f]{64}$/);
        expect(JSON.stringify(row)).not.toContain(secret);
        if (s.name !== 'sqlite') return;
        // The whole directory: the database file, and the write-ahead log where fresh rows sit.
        const files = readdirSync(dataDir).map((file) => readFileSync(join(dataDir, file)));
        expect(files.some((bytes) => bytes.includes(String(row?.secretHash)))).toBe(true); // the scan does see the row
        expect(files.some((bytes) => bytes.includes(secret))).toBe(false);
      });

      it('lets no caller revoke another merchant\'s key, and only owners manage keys', async () => {
        const { key, record } = await createApiKey(ports, { merchantId: 'm_a', role: 'clerk', label: 'till' });
        const fault = await faultOf(revokeApiKey(ports, owner('m_b'), record.id));
        expect(fault.code).toBe(2009); // API_KEY_NOT_FOUND, exactly as for a key that does not exist
        const clerk: Caller = { merchantId: 'm_a', role: 'clerk', actor: 'alice' };
        expect((await faultOf(revokeApiKey(ports, clerk, record.id))).code).toBe(code.PERMISSION_DENIED);
        expect((await authenticateApiKey(ports, key)).merchantId).toBe('m_a');
      });

      it('lists a merchant\'s keys without their hashes', async () => {
        await createApiKey(ports, { merchantId: 'm_a', role: 'clerk', label: 'till' });
        await createApiKey(ports, { merchantId: 'm_b', role: 'clerk', label: 'other shop' });
        const listed = await listApiKeys(ports, owner('m_a'));
        expect(listed.map((k) => k.label)).toEqual(['till']);
        expect(listed[0]).not.toHaveProperty('secretHash');
      });

      it('needs an existing merchant', async () => {
        const fault = await faultOf(createApiKey(ports, { merchantId: 'm_none', role: 'clerk', label: 'till' }));
        expect(fault.code).toBe(code.MERCHANT_NOT_FOUND);
      });
    });
  });
}

describe('password hasher under load', () => {
  it('turns the second of two concurrent verifications away when nothing may queue', async () => {
    const setup = fastHasher();
    const hash = await setup.hash(PASSWORD);
    const busy = fastHasher({ maxConcurrent: 1, maxQueued: 0 });
    const answers = await Promise.allSettled([busy.verify(hash, PASSWORD), busy.verify(hash, PASSWORD)]);
    expect(answers[0]).toEqual({ status: 'fulfilled', value: true });
    const refused = answers[1] as PromiseRejectedResult;
    expect((refused.reason as Fault).code).toBe(code.SERVER_BUSY);
    expect((refused.reason as Fault).retryAfterSeconds).toBe(2);
  });

  it('lets callers wait in line up to the limit', async () => {
    const limited = fastHasher({ maxConcurrent: 1, maxQueued: 1 });
    const answers = await Promise.allSettled([limited.hash(PASSWORD), limited.hash(PASSWORD), limited.hash(PASSWORD)]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    // And the slot comes free again afterwards.
    expect(await limited.verify((answers[0] as PromiseFulfilledResult<string>).value, PASSWORD)).toBe(true);
  });
});
