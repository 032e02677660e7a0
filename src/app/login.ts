// 登录 with user name and password, and the sessions that follow. Guessing is slowed by a lock
// that doubles from the 5th wrong password in a row; the database keeps only hashes of session
// tokens, so a copy of it lets nobody log in.
import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from '../domain/access.js';
import { Fault, faults } from '../domain/faults.js';
import { shanghaiTimestamp } from '../domain/time.js';
import type { PasswordHasher } from '../security/passwords.js';
import { recordAudit } from './audit.js';
import type { Ports, UserRecord } from './ports.js';

const SESSION_MS = 12 * 3600 * 1000;
const FAILURES_BEFORE_LOCK = 4;
const FIRST_LOCK_SECONDS = 30;
const MAX_LOCK_SECONDS = 3600;

// A real argon2id hash (of a random password nobody kept) at the default costs. Unknown user
// names are verified against it so they take as long as known ones and cannot be told apart.
const DUMMY_HASH = '$argon2id$v=19$m=19456,p=1,t=2$Kh+CUwCHJRL2Ym/XRgExlQ$2nCfgXIWXE4TbJExLQpCKdtt8tu2cO25L8lJKizOBOw';

type LoginPorts = Ports & { passwords: PasswordHasher };

export interface LoginResult {
  /** Shown to the client once; only its SHA-256 is stored. */
  token: string;
  expiresAt: string;
  user: UserRecord;
}

export async function login(ports: LoginPorts, input: { username: string; password: string }): Promise<LoginResult> {
  const user = await ports.store.read.users.findByUsername(input.username);
  if (!user) {
    await ports.passwords.verify(DUMMY_HASH, input.password);
    throw new Fault(faults.LOGIN_FAILED);
  }
  // Before verifying: a locked account must not let guesses through, nor spend CPU on them.
  refuseIfLocked(user, ports.clock.now());
  // SERVER_BUSY from the hasher passes straight up and, rightly, does not count as a failure.
  if (!(await ports.passwords.verify(user.passwordHash, input.password))) throw await recordFailure(ports, user.id);
  return startSession(ports, user.id);
}

export async function logout(ports: Ports, token: string): Promise<void> {
  await ports.store.write((tx) => tx.sessions.delete(hashToken(token)));
}

export async function authenticateSession(ports: Ports, token: string | undefined): Promise<Caller> {
  if (!token) throw new Fault(faults.AUTH_REQUIRED);
  const session = await ports.store.read.sessions.find(hashToken(token));
  if (!session || Date.parse(session.expiresAt) <= ports.clock.now().getTime()) throw new Fault(faults.SESSION_EXPIRED);
  const user = await ports.store.read.users.get(session.userId);
  if (!user) throw new Fault(faults.SESSION_EXPIRED);
  return { merchantId: user.merchantId, role: user.role, actor: user.username };
}

/** Counts a wrong password and returns the fault to answer with. */
async function recordFailure(ports: LoginPorts, userId: string): Promise<Fault> {
  const seconds = await ports.store.write(async (tx) => {
    // Re-read inside the transaction: concurrent guesses must each count.
    const user = await tx.users.get(userId);
    if (!user) return 0;
    const failures = user.failedAttempts + 1;
    const seconds = lockSeconds(failures);
    const now = ports.clock.now();
    const lockedUntil = seconds > 0 ? shanghaiTimestamp(new Date(now.getTime() + seconds * 1000)) : user.lockedUntil;
    await tx.users.setLoginState(userId, { failedAttempts: failures, lockedUntil });
    if (seconds > 0) {
      await recordAudit(tx, ports.clock, {
        merchantId: user.merchantId, actor: 'system', action: 'user.locked', subject: user.username, detail: { failedAttempts: failures, seconds },
      });
    }
    return seconds;
  });
  // Returned, not thrown inside the transaction, which would roll the count back.
  return seconds > 0 ? lockedFault(seconds) : new Fault(faults.LOGIN_FAILED);
}

async function startSession(ports: LoginPorts, userId: string): Promise<LoginResult> {
  const token = randomBytes(32).toString('base64url');
  return ports.store.write(async (tx) => {
    const user = await tx.users.get(userId);
    if (!user) throw new Fault(faults.LOGIN_FAILED);
    const now = ports.clock.now();
    refuseIfLocked(user, now); // a concurrent guess may have locked the account while we verified
    if (user.failedAttempts !== 0 || user.lockedUntil !== null) await tx.users.setLoginState(userId, { failedAttempts: 0, lockedUntil: null });
    const expiresAt = shanghaiTimestamp(new Date(now.getTime() + SESSION_MS));
    await tx.sessions.insert({ tokenHash: hashToken(token), userId, expiresAt, createdAt: shanghaiTimestamp(now) });
    return { token, expiresAt, user: { ...user, failedAttempts: 0, lockedUntil: null } };
  });
}

/** 30 s at the 5th failure in a row, doubling with each further one, at most an hour. */
export function lockSeconds(failures: number): number {
  if (failures <= FAILURES_BEFORE_LOCK) return 0;
  const doublings = Math.min(failures - FAILURES_BEFORE_LOCK - 1, 16);
  return Math.min(FIRST_LOCK_SECONDS * 2 ** doublings, MAX_LOCK_SECONDS);
}

function refuseIfLocked(user: UserRecord, now: Date): void {
  if (user.lockedUntil === null) return;
  const remainingMs = Date.parse(user.lockedUntil) - now.getTime();
  if (remainingMs > 0) throw lockedFault(Math.ceil(remainingMs / 1000));
}

function lockedFault(seconds: number): Fault {
  return new Fault(faults.ACCOUNT_LOCKED, { seconds: String(seconds) }, [], seconds);
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
