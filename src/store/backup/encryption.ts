// Encryption at rest: the data file as AES-256-GCM under a key the operator keeps in a file.
// Layout of an encrypted file: "FAPIAOE1" | 12-byte random IV | ciphertext | 16-byte GCM tag.
// The tag goes last so the file can be written in one streaming pass; reading takes it from the
// end first. The IV and tag live in the file, not the manifest, so the file stands on its own.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { bilingual, Fault, faults, originalOf } from '../../domain/faults.js';

export const ENCRYPTION = { algorithm: 'aes-256-gcm', layout: 'FAPIAOE1 | iv(12) | ciphertext | tag(16)' } as const;
const MAGIC = Buffer.from('FAPIAOE1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + IV_BYTES;

/** 32 raw bytes or 64 hex digits; a key file everyone can read is no secret, so it is refused. */
export function readKeyFile(path: string): Buffer {
  const refuse = (zh: string, en: string) => new Fault(faults.BACKUP_KEY_INVALID, { reason: bilingual(zh, en) });
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    throw refuse(`无法读取密钥文件 ${path}（${originalOf(error)}）`, `cannot read the key file ${path} (${originalOf(error)})`);
  }
  if (mode & 0o004) throw refuse(`密钥文件 ${path} 所有人都可读取（请执行 chmod 600）`, `the key file ${path} is readable by everyone (chmod 600 it)`);
  const bytes = readFileSync(path);
  if (bytes.length === 32) return bytes;
  const text = bytes.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  throw refuse(`密钥文件 ${path} 必须是 32 字节原始数据或 64 位十六进制数字`, `the key file ${path} must hold 32 raw bytes or 64 hex digits`);
}

/**
 * A short value derived from the key (HMAC, so it reveals nothing usable about it): restore tells a
 * wrong key at once, and a failed tag after a matching check means damage, not the wrong key.
 */
export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('fapiao backup key check v1').digest('hex').slice(0, 16);
}

export async function encryptFile(key: Buffer, from: string, to: string): Promise<void> {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  await pipeline(
    createReadStream(from),
    async function* (source: AsyncIterable<Buffer>) {
      yield Buffer.concat([MAGIC, iv]);
      for await (const chunk of source) yield cipher.update(chunk);
      yield cipher.final();
      yield cipher.getAuthTag();
    },
    createWriteStream(to, { mode: 0o600 }),
  );
}

/** Decrypts to `to`; on any failure `to` is removed, so no unauthenticated plaintext is left behind. */
export async function decryptFile(key: Buffer, expectedCheck: string, from: string, to: string): Promise<void> {
  if (keyCheck(key) !== expectedCheck) throw new Fault(faults.BACKUP_KEY_INVALID, { reason: bilingual('这不是加密该备份时使用的密钥', 'this is not the key the backup was encrypted with') });
  const { size } = await stat(from);
  const corrupt = (zh: string, en: string) => new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(zh, en) });
  if (size < HEADER_BYTES + TAG_BYTES) throw corrupt(`${from} 太短，不是加密数据文件`, `${from} is too short to be an encrypted data file`);
  const header = Buffer.alloc(HEADER_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  const handle = await open(from, 'r');
  try {
    await handle.read(header, 0, HEADER_BYTES, 0);
    await handle.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    await handle.close();
  }
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(`${from} 不是 Fapiao 的加密数据文件`, `${from} is not an encrypted Fapiao data file`);
  const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(MAGIC.length));
  decipher.setAuthTag(tag);
  try {
    await pipeline(
      createReadStream(from, { start: HEADER_BYTES, end: size - TAG_BYTES - 1 }),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) yield decipher.update(chunk);
        yield decipher.final(); // throws when the tag does not match
      },
      createWriteStream(to, { mode: 0o600 }),
    );
  } catch (error) {
    await rm(to, { force: true });
    if (error instanceof Error && /authenticate/.test(error.message)) throw corrupt(`${from} 未通过认证标签校验：文件已被改动`, `${from} fails its authentication tag: it was altered`);
    throw error;
  }
}
