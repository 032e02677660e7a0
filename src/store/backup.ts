// Verified backups (R33). A backup is a directory `fapiao-<UTC time>-<dialect>/` with the data file
// and manifest.json. It is built under a hidden temporary name and renamed only when complete and
// verified, so a crash never leaves something that looks like a backup. Every backup, and every
// restore before it touches anything, is restored into a scratch database and checked: row counts
// and chain heads against the manifest, then the hash chains (the check is passed in by the caller,
// because walking chains is application knowledge).
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Store } from '../app/ports.js';
import { bilingual, Fault, faults, withOriginal } from '../domain/faults.js';
import { migrateDatabase, openStore, type StoreConfig } from './database.js';
import type { DialectBackup, ScratchDatabase } from './backup/dialect.js';
import { sqliteBackup } from './backup/sqlite.js';
import { postgresBackup } from './backup/postgres.js';
import { checksum, megabytes, sync } from './backup/files.js';
import { decryptFile, encryptFile, ENCRYPTION, keyCheck } from './backup/encryption.js';
import { backupName, checkUsable, compareFacts, newManifest, readManifest, writeManifest, type Dialect, type Manifest, type Progress, type Verification } from './backup/manifest.js';

export { readKeyFile } from './backup/encryption.js';
export { applyRetention, listBackups } from './backup/retention.js';
export type { Manifest, Progress, Verification } from './backup/manifest.js';

/** Walks what only the application can judge (the hash chains) on a restored copy. */
export type DataCheck = (store: Store) => Promise<{ invoices: number; auditEntries: number; problems: string[] }>;

export interface BackupOptions {
  dir: string;
  key?: Buffer;
  now?: Date;
  progress?: Progress;
}

export interface RestoreOptions {
  dryRun?: boolean;
  key?: Buffer;
  progress?: Progress;
  /** PostgreSQL: how long to wait for other sessions' locks on the live schema (tests shorten it). */
  lockTimeoutMs?: number;
}

export interface RestoreResult {
  backup: string;
  dryRun: boolean;
  verification: Verification;
  /** SQLite: where the replaced database file was kept. */
  previous?: string;
}

const quiet: Progress = () => undefined;
const FAPIAO_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function dialectOf(config: StoreConfig): Dialect {
  return config.databaseUrl ? 'postgres' : 'sqlite';
}

function backupFor(config: StoreConfig, options: { lockTimeoutMs?: number } = {}): DialectBackup {
  return config.databaseUrl ? postgresBackup({ ...config, databaseUrl: config.databaseUrl }, options) : sqliteBackup(config.dataDir);
}

export async function createBackup(config: StoreConfig, options: BackupOptions, check: DataCheck): Promise<{ path: string; manifest: Manifest }> {
  const db = backupFor(config);
  const progress = options.progress ?? quiet;
  const now = options.now ?? new Date();
  const dir = resolve(options.dir);
  let name = backupName(now, db.dialect);
  const staging = () => join(dir, `.${name}.partial`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (let bump = 1; existsSync(join(dir, name)) || existsSync(staging()); bump++) name = backupName(new Date(now.getTime() + bump), db.dialect);
    await mkdir(staging(), { mode: 0o700 });
  } catch (error) {
    throw failed(error);
  }
  const work = staging();
  const final = join(dir, name);
  try {
    progress(`backing up the ${db.dialect} database into ${final}`);
    const started = Date.now();
    const plain = join(work, db.dataFile);
    const snapshot = await db.snapshot(plain, progress);
    let dataFile = db.dataFile;
    if (options.key) {
      progress('encrypting (AES-256-GCM) …');
      dataFile = `${db.dataFile}.enc`;
      await encryptFile(options.key, plain, join(work, dataFile));
      await rm(plain);
    }
    const file = await checksum(join(work, dataFile));
    await sync(join(work, dataFile));
    progress(`copied ${megabytes(file.size)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const manifest = newManifest(
      {
        createdAt: now.toISOString(),
        dialect: db.dialect,
        tools: { fapiao: FAPIAO_VERSION, node: process.version, ...snapshot.tools },
        ...(snapshot.postgresSchema !== undefined && { postgresSchema: snapshot.postgresSchema }),
        dataFile,
        files: { [dataFile]: file },
        encryption: options.key ? { ...ENCRYPTION, keyCheck: keyCheck(options.key) } : null,
        verification: null,
      },
      snapshot.facts,
    );
    const checked = await verifyCopy(db, work, manifest, { key: options.key, work: join(work, '.verify'), keep: false, progress, check });
    manifest.verification = checked.verification;
    await writeManifest(work, manifest);
    await sync(work);
    await rename(work, final);
    await sync(dir);
    if (!manifest.verification.ok) {
      throw new Fault(faults.BACKUP_VERIFICATION_FAILED, { backup: final, reason: withOriginal('校验发现问题', manifest.verification.problems[0] ?? 'unknown') }, problemDetails(manifest.verification));
    }
    return { path: final, manifest };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error instanceof Fault ? error : failed(error);
  }
}

export async function restoreBackup(config: StoreConfig, backupDir: string, options: RestoreOptions, check: DataCheck): Promise<RestoreResult> {
  const db = backupFor(config, options);
  const progress = options.progress ?? quiet;
  const dir = resolve(backupDir);
  const manifest = await readManifest(dir);
  checkUsable(manifest, db.dialect);
  if (manifest.verification && !manifest.verification.ok) {
    throw new Fault(faults.BACKUP_VERIFICATION_FAILED, { backup: dir, reason: withOriginal('该备份在制作时就未通过校验', manifest.verification.problems[0] ?? '', 'it failed when it was taken') }, problemDetails(manifest.verification));
  }
  progress(`checking ${basename(dir)} (${manifest.createdAt}, schema ${manifest.schema.latest ?? 'empty'}) …`);
  await checkFiles(dir, manifest);
  if (manifest.encryption && !options.key) throw new Fault(faults.BACKUP_KEY_INVALID, { reason: bilingual('备份已加密，请用 --key-file 指定密钥文件', 'the backup is encrypted; give its key file with --key-file') });
  if (!options.dryRun) await db.checkNotInUse(); // before the long part, not only at the end

  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await removeStaleRestores(config.dataDir);
  // Beside the live database: for SQLite, moving the copy in is then a rename on the same disk.
  const work = await mkdtemp(join(config.dataDir, '.restore-'));
  let scratch: ScratchDatabase | undefined;
  try {
    const checked = await verifyCopy(db, dir, manifest, { key: options.key, work, keep: true, progress, check });
    scratch = checked.scratch;
    const { verification } = checked;
    if (!verification.ok) {
      throw new Fault(faults.BACKUP_FOREIGN, { reason: withOriginal('备份数据与其清单不符', verification.problems[0] ?? '', 'its data does not match its manifest') }, problemDetails(verification));
    }
    progress(`verified: ${verification.invoices} invoices, ${verification.auditEntries} audit entries, chains intact${verification.migrated.length ? `, migrated ${verification.migrated.join(', ')}` : ''}`);
    if (options.dryRun) return { backup: dir, dryRun: true, verification };
    const previous = await db.moveIn(scratch!, progress);
    return { backup: dir, dryRun: false, verification, ...(previous && { previous }) };
  } catch (error) {
    throw error instanceof Fault ? error : new Fault(faults.RESTORE_FAILED, { reason: withOriginal('恢复过程出错', message(error)) });
  } finally {
    await scratch?.discard();
    await rm(work, { recursive: true, force: true });
  }
}

/** A restore's work directory older than this was left by a restore that was killed. */
const STALE_RESTORE_MS = 24 * 3600_000;

/** Work directories of restores killed half-way hold a whole copy of a database each: gone with the next restore. */
async function removeStaleRestores(dataDir: string): Promise<void> {
  for (const name of (await readdir(dataDir).catch(() => [])).filter((n) => n.startsWith('.restore-'))) {
    const path = join(dataDir, name);
    const modified = await stat(path).then((s) => s.mtimeMs, () => undefined);
    // Best effort: one that cannot be removed (another user's) holds no restore back.
    if (modified !== undefined && Date.now() - modified >= STALE_RESTORE_MS) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function checkFiles(dir: string, manifest: Manifest): Promise<void> {
  if (!manifest.files[manifest.dataFile]) throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`备份清单中没有 ${manifest.dataFile} 的校验和`, `the manifest lists no checksum for ${manifest.dataFile}`) });
  for (const [name, promised] of Object.entries(manifest.files)) {
    if (name !== basename(name)) throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`备份清单列出了备份目录之外的文件：${name}`, `the manifest names a file outside the backup: ${name}`) });
    const path = join(dir, name);
    if (!existsSync(path)) throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`缺少文件 ${name}`, `${name} is missing`) });
    const { size } = await stat(path);
    if (size !== promised.size) throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`${name} 有 ${size} 字节，清单记载为 ${promised.size} 字节`, `${name} has ${size} bytes, the manifest says ${promised.size}`) });
    if ((await checksum(path)).sha256 !== promised.sha256) throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`${name} 与其 SHA-256 校验和不符`, `${name} does not match its SHA-256 checksum`) });
  }
}

/**
 * Restores the stored data file (decrypting it as restore would) into a scratch database, compares
 * it with the manifest, migrates it to this program's schema and walks its chains. Problems are
 * recorded, not thrown: the caller decides what a failed check means. With `keep`, the scratch
 * database is handed back for moving in; otherwise it is removed here.
 */
async function verifyCopy(
  db: DialectBackup,
  dir: string,
  manifest: Manifest,
  options: { key: Buffer | undefined; work: string; keep: boolean; progress: Progress; check: DataCheck },
): Promise<{ verification: Verification; scratch?: ScratchDatabase }> {
  const started = Date.now();
  const problems: string[] = [];
  let migrated: string[] = [];
  let totals = { invoices: 0, auditEntries: 0 };
  let scratch: ScratchDatabase | undefined;
  await mkdir(options.work, { recursive: true, mode: 0o700 });
  const stored = join(dir, manifest.dataFile);
  const plain = join(options.work, db.dataFile);
  if (manifest.encryption) await decryptFile(options.key!, manifest.encryption.keyCheck, stored, plain);
  else if (db.copiesDataFile) await copyFile(stored, plain);
  options.progress('verifying: restoring into a scratch database …');
  try {
    scratch = await db.scratch(manifest.encryption || db.copiesDataFile ? plain : stored, options.work, manifest, options.progress);
  } catch (error) {
    // Setting the copy up failed (no CREATEDB, a tool missing or too old, the server away): that
    // says nothing of the backup, so it is the caller's failure (5004, 5011), never a finding of
    // the check, which would call a good backup failed or foreign (5007).
    if (!options.keep) await rm(options.work, { recursive: true, force: true });
    throw error;
  }
  try {
    problems.push(...compareFacts(manifest, await scratch.facts()));
    migrated = await migrateDatabase(scratch.config);
    options.progress('verifying: walking the hash chains …');
    // Opened with (no-op) migrations on purpose: a SQLite store closes only connections it has
    // used, and an unused writer would keep the copy open, blocking the move into place.
    const store = await openStore(scratch.config);
    try {
      const result = await options.check(store);
      totals = { invoices: result.invoices, auditEntries: result.auditEntries };
      problems.push(...result.problems);
    } finally {
      await store.close();
    }
  } catch (error) {
    problems.push(`the copy could not be restored and opened: ${message(error)}`);
  }
  if (!options.keep || problems.length > 0) {
    await scratch?.discard();
    scratch = undefined;
  }
  if (!options.keep) await rm(options.work, { recursive: true, force: true });
  const verification: Verification = {
    ok: problems.length === 0,
    at: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    migrated,
    ...totals,
    problems,
  };
  return { verification, ...(scratch && { scratch }) };
}

function failed(error: unknown): Fault {
  return new Fault(faults.BACKUP_FAILED, { reason: withOriginal('备份过程出错', message(error)) });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function problemDetails(verification: Verification) {
  return verification.problems.map((issue) => ({ field: 'verification', issue }));
}
