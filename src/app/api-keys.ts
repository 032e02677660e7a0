// API keys for machine clients: "fpk_<id>_<secret>". The id finds the row; only SHA-256 of the
// secret is stored, so the key is shown once at creation and a copy of the database cannot be
// used to call the API. (A plain hash suffices here: the secret is 256 random bits, not a
// password a person chose, so there is nothing to guess.)
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { authorize, isRole, ROLE_CHOICES, type Caller, type Role } from '../domain/access.js';
import { Fault, faults } from '../domain/faults.js';
import { printedTextCheck } from '../domain/text.js';
import { printableCharacters } from '../documents/font.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { recordAudit } from './audit.js';
import type { ApiKeyRecord, Ports } from './ports.js';

// id: 16 hex characters; secret: 32 bytes in base64url, which may itself contain '_' and '-'.
const KEY_FORMAT = /^fpk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** What may be shown about a key after its creation. */
export type ApiKeyView = Omit<ApiKeyRecord, 'secretHash'>;

export interface NewApiKey {
  merchantId: string;
  role: Role;
  label: string;
  /** Who creates the key, for the audit log; 'system' when the CLI does. */
  actor?: string;
}

/** The returned `key` is the only copy there will ever be: hand it to the user, never log it. */
export async function createApiKey(ports: Ports, input: NewApiKey): Promise<{ key: string; record: ApiKeyRecord }> {
  const label = printedTextCheck(printableCharacters())(input.label, 'label', 64, true); // printed as 开票人 on what the key issues
  if (!isRole(input.role)) throw new Fault(faults.FIELD_INVALID, { field: 'role', reason: ROLE_CHOICES }, [{ field: 'role', issue: 'unknown role' }]);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return ports.store.write(async (tx) => {
    if (!(await tx.merchants.get(input.merchantId))) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: input.merchantId });
    const record: ApiKeyRecord = {
      id, merchantId: input.merchantId, role: input.role, label, secretHash: hashSecret(secret), createdAt: shanghaiTimestamp(ports.clock.now()), revokedAt: null,
    };
    await tx.apiKeys.insert(record);
    await recordAudit(tx, ports.clock, { merchantId: record.merchantId, actor: input.actor ?? 'system', action: 'apikey.created', subject: id, detail: { label, role: record.role } });
    return { key: `fpk_${id}_${secret}`, record };
  });
}

/** Accepts the key itself or a whole "Bearer <key>" Authorization header. */
export async function authenticateApiKey(ports: Ports, header: string): Promise<Caller & { keyId: string }> {
  const text = header.trim().replace(/^Bearer\s+/i, '');
  if (text === '') throw new Fault(faults.AUTH_REQUIRED);
  const match = KEY_FORMAT.exec(text);
  if (!match) throw new Fault(faults.API_KEY_INVALID);
  const id = match[1]!;
  const secret = match[2]!;
  const record = await ports.store.read.apiKeys.get(id);
  // Unknown, wrong and revoked all answer the same, so the answer tells a guesser nothing.
  if (!record || !sameHash(record.secretHash, hashSecret(secret)) || record.revokedAt !== null) throw new Fault(faults.API_KEY_INVALID);
  return { merchantId: record.merchantId, role: record.role, actor: `apikey:${record.label}`, keyId: record.id };
}

export async function revokeApiKey(ports: Ports, caller: Caller, id: string): Promise<void> {
  authorize(caller, 'apikeys.manage');
  await ports.store.write(async (tx) => {
    const record = await tx.apiKeys.get(id);
    // Another merchant's key answers exactly like a missing one: its existence is not ours to know.
    if (!record || record.merchantId !== caller.merchantId) {
      throw new Fault(faults.API_KEY_NOT_FOUND, { id }, [{ field: 'id', issue: 'not found' }]);
    }
    if (record.revokedAt !== null) return; // revoking twice is harmless and leaves one audit entry
    await tx.apiKeys.revoke(caller.merchantId, id, shanghaiTimestamp(ports.clock.now()));
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'apikey.revoked', subject: id, detail: { label: record.label } });
  });
}

export async function listApiKeys(ports: Ports, caller: Caller): Promise<ApiKeyView[]> {
  authorize(caller, 'apikeys.manage');
  const records = await ports.store.read.apiKeys.list(caller.merchantId);
  return records.map(({ secretHash: _hidden, ...view }) => view);
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function sameHash(storedHex: string, presentedHex: string): boolean {
  const stored = Buffer.from(storedHex, 'hex');
  const presented = Buffer.from(presentedHex, 'hex');
  return stored.length === presented.length && timingSafeEqual(stored, presented);
}
