// Adding a user to a merchant. Who may do this (role 'users.manage') is checked by the route or
// the CLI before calling; this use case checks the input and keeps user names unique.
import { randomBytes } from 'node:crypto';
import { isRole, ROLE_CHOICES, type Caller, type Role } from '../domain/access.js';
import { bilingual, Fault, faults, type Bilingual } from '../domain/faults.js';
import { shanghaiTimestamp } from '../domain/time.js';
import type { PasswordHasher } from '../security/passwords.js';
import { recordAudit } from './audit.js';
import type { Ports, Repositories, UserRecord } from './ports.js';

const USERNAME = /^[A-Za-z0-9._@-]{3,64}$/;
const MIN_PASSWORD = 10;
// Long passphrases are welcome; megabyte "passwords" are only a way to burn our CPU.
const MAX_PASSWORD = 1024;

export interface NewUser {
  merchantId: string;
  username: string;
  password: string;
  role: Role;
  /** Who adds the user, for the audit log; 'system' when the CLI bootstraps a merchant. */
  actor?: string;
}

export async function addUser(ports: Ports & { passwords: PasswordHasher }, input: NewUser): Promise<UserRecord> {
  if (!USERNAME.test(input.username)) throw invalid('username', bilingual('3 到 64 个字符：字母、数字及 . _ @ -', '3 to 64 characters: letters, digits, . _ @ -'));
  if (!isRole(input.role)) throw invalid('role', ROLE_CHOICES);
  checkPasswordStrength(input.password, 'password');

  // Cheap checks first, so a doomed request does not spend a password hash.
  await checkFree(ports.store.read, input);
  // Hashing takes tens of milliseconds: never inside the transaction, which would hold the
  // single writer (and every invoice behind it) for that long.
  const passwordHash = await ports.passwords.hash(input.password);

  return ports.store.write(async (tx) => {
    await checkFree(tx, input); // again: someone may have taken the name while we hashed
    const user: UserRecord = {
      id: `u_${randomBytes(8).toString('hex')}`,
      merchantId: input.merchantId,
      username: input.username,
      passwordHash,
      role: input.role,
      failedAttempts: 0,
      lockedUntil: null,
      createdAt: shanghaiTimestamp(ports.clock.now()),
    };
    await tx.users.insert(user);
    await recordAudit(tx, ports.clock, {
      merchantId: user.merchantId, actor: input.actor ?? 'system', action: 'user.added', subject: user.username, detail: { userId: user.id, role: user.role },
    });
    return user;
  });
}

/**
 * A logged-in person changes their own password (the first-start password is meant to be
 * replaced). The current password is verified first; other sessions stay valid until they expire.
 */
export async function changePassword(ports: Ports & { passwords: PasswordHasher }, caller: Caller, current: string, next: string): Promise<void> {
  const user = await ports.store.read.users.findByUsername(caller.actor);
  if (!user || user.merchantId !== caller.merchantId) throw new Fault(faults.PERMISSION_DENIED, {
      role: caller.role,
      action: bilingual('password.change（请以用户身份登录，不能使用 API 密钥）', 'password.change (log in as a person, not with an API key)'),
    });
  checkPasswordStrength(next, 'new_password');
  if (!(await ports.passwords.verify(user.passwordHash, current))) throw new Fault(faults.LOGIN_FAILED);
  const passwordHash = await ports.passwords.hash(next);
  await ports.store.write(async (tx) => {
    await tx.users.setPasswordHash(user.id, passwordHash);
    await recordAudit(tx, ports.clock, { merchantId: user.merchantId, actor: user.username, action: 'user.password_changed', subject: user.username });
  });
}

function checkPasswordStrength(password: string, field: string): void {
  const length = [...password].length;
  if (length < MIN_PASSWORD) throw new Fault(faults.PASSWORD_TOO_WEAK, { reason: bilingual(`只有 ${length} 个字符，至少需要 ${MIN_PASSWORD} 个`, `${length} characters, at least ${MIN_PASSWORD}`) }, [{ field, issue: 'too short' }]);
  if (length > MAX_PASSWORD) throw invalid(field, bilingual(`最多 ${MAX_PASSWORD} 个字符`, `at most ${MAX_PASSWORD} characters`));
}

async function checkFree(repos: Repositories, input: NewUser): Promise<void> {
  if (!(await repos.merchants.get(input.merchantId))) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: input.merchantId });
  if (await repos.users.findByUsername(input.username)) throw new Fault(faults.USER_EXISTS, { username: input.username });
}

function invalid(field: string, reason: Bilingual): Fault {
  return new Fault(faults.FIELD_INVALID, { field, reason }, [{ field, issue: reason.en }]);
}
