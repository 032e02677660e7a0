// The platform's Ed25519 signing keys (R22).
//
// Where keys live: each deployment's PRIVATE key is a file under FAPIAO_DATA_DIR/keys
// (directory 0700, files 0600), created on first start; `current` names the key in use. Every
// PUBLIC key is also registered in the database table signing_keys, so that any instance (several
// share one PostgreSQL) can check any signature, whichever instance made it, and so that
// rotation never loses a key that old invoices were signed with. Instances that should sign
// with one key share the keys directory (or copy it); instances with their own keys still verify
// each other's invoices through the table.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyIdOf, signDigest, SIGNATURE_ALGORITHM, type InvoiceSignature } from '../domain/signature.js';
import { shanghaiTimestamp, type Clock } from '../domain/time.js';
import type { InvoiceSigner, SigningKeyRecord } from './document-ports.js';
import type { Store } from './ports.js';

const CURRENT = 'current';
/** How often a running server looks whether `fapiao keys rotate` named a new key. */
const RECHECK_MS = 10_000;

export function keysDir(dataDir: string): string {
  return join(dataDir, 'keys');
}

interface LoadedKey {
  id: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** The signer a server uses: creates the first key if there is none and registers it. */
export async function openSigner(store: Store, clock: Clock, dataDir: string): Promise<InvoiceSigner> {
  const dir = keysDir(dataDir);
  let key = loadCurrent(dir) ?? createFirstKey(dir);
  await register(store, clock, key);
  let checkedAt = Date.now();
  let currentMtime = mtime(dir);
  return {
    keyId: () => key.id,
    sign(digest: string): InvoiceSignature {
      const now = Date.now();
      if (now - checkedAt > RECHECK_MS) {
        checkedAt = now;
        const changed = mtime(dir);
        if (changed !== currentMtime) {
          currentMtime = changed;
          // The rotation registered the public key before naming it current, so verification
          // of what we sign next already works everywhere.
          key = loadCurrent(dir) ?? key;
        }
      }
      return { keyId: key.id, value: signDigest(key.privateKey, digest) };
    },
  };
}

/** `fapiao keys rotate`: a new key signs from now on; every older public key stays registered. */
export async function rotateSigningKey(store: Store, clock: Clock, dataDir: string): Promise<SigningKeyRecord> {
  const dir = keysDir(dataDir);
  prepareDir(dir);
  const key = newKey();
  writePrivateKey(dir, key);
  await register(store, clock, key);
  const temp = join(dir, `${CURRENT}.${process.pid}.tmp`);
  writeFileSync(temp, key.id, { mode: 0o600 });
  renameSync(temp, join(dir, CURRENT)); // atomic: a reader sees the old id or the new one
  await store.write((tx) => tx.signingKeys.retireOthers(key.id, shanghaiTimestamp(clock.now())));
  return (await store.read.signingKeys.list()).find((k) => k.id === key.id)!;
}

export async function listSigningKeys(store: Store): Promise<SigningKeyRecord[]> {
  return store.read.signingKeys.list();
}

/** The key currently named in the keys directory, if any (for `fapiao keys list`). */
export function currentKeyId(dataDir: string): string | undefined {
  return readCurrentId(keysDir(dataDir));
}

async function register(store: Store, clock: Clock, key: LoadedKey): Promise<void> {
  await store.write((tx) =>
    tx.signingKeys.register({ id: key.id, algorithm: SIGNATURE_ALGORITHM, publicKeyPem: key.publicKeyPem, createdAt: shanghaiTimestamp(clock.now()), retiredAt: null }),
  );
}

function loadCurrent(dir: string): LoadedKey | undefined {
  const id = readCurrentId(dir);
  if (!id) return undefined;
  const privateKey = createPrivateKey(readFileSync(join(dir, `${id}.pem`), 'utf8'));
  const publicKeyPem = publicPem(privateKey);
  if (keyIdOf(publicKeyPem) !== id) throw new Error(`signing key file ${id}.pem does not hold key ${id}`);
  return { id, privateKey, publicKeyPem };
}

function readCurrentId(dir: string): string | undefined {
  try {
    const id = readFileSync(join(dir, CURRENT), 'utf8').trim();
    return /^[0-9a-f]{16}$/.test(id) ? id : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * First start. Several workers may start at once on one data directory: each writes its own key
 * file, then tries to create `current` exclusively; the losers delete their key and use the winner's.
 */
function createFirstKey(dir: string): LoadedKey {
  prepareDir(dir);
  const key = newKey();
  writePrivateKey(dir, key);
  try {
    writeFileSync(join(dir, CURRENT), key.id, { flag: 'wx', mode: 0o600 });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    unlinkSync(join(dir, `${key.id}.pem`));
    for (let attempt = 0; attempt < 50; attempt++) {
      const winner = loadCurrent(dir);
      if (winner) return winner;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // the winner is mid-write
    }
    throw new Error(`${join(dir, CURRENT)} exists but names no key`);
  }
}

function newKey(): LoadedKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { id: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}

function writePrivateKey(dir: string, key: LoadedKey): void {
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(join(dir, `${key.id}.pem`), pem, { flag: 'wx', mode: 0o600 });
}

function prepareDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // owner only, even if it existed with looser permissions
}

function publicPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

function mtime(dir: string): number {
  try {
    return statSync(join(dir, CURRENT)).mtimeMs;
  } catch {
    return 0;
  }
}
