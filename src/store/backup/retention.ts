// Retention: keep the newest `keep` verified backups and remove everything older than the oldest
// of them. The newest verified backup is never removed, whatever `keep` says. Of the backups that
// failed verification only the newest is kept, for someone to look at: a schedule retrying a
// failing backup must not fill the disk with full-size copies.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BACKUP_NAME, readManifest, type Dialect, type Manifest } from './manifest.js';

/** A crashed run's temporary directory is surely dead after this long (and may hold plain data). */
const STALE_PARTIAL_MS = 24 * 3600_000;

export interface BackupEntry {
  path: string;
  manifest: Manifest;
}

/** This directory's backups of one dialect, newest first; anything without a valid manifest is not ours to touch. */
export async function listBackups(dir: string, dialect: Dialect): Promise<BackupEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const entries: BackupEntry[] = [];
  for (const name of names.filter((n) => BACKUP_NAME.test(n) && n.endsWith(`-${dialect}`))) {
    const manifest = await readManifest(join(dir, name)).catch(() => undefined);
    if (manifest?.dialect === dialect) entries.push({ path: join(dir, name), manifest });
  }
  return entries.sort((a, b) => (a.manifest.createdAt < b.manifest.createdAt ? 1 : -1));
}

export async function applyRetention(dir: string, dialect: Dialect, keep: number, now = new Date()): Promise<string[]> {
  const backups = await listBackups(dir, dialect);
  const verified = backups.filter((b) => b.manifest.verification?.ok);
  const oldestKept = verified[Math.max(1, keep) - 1];
  const newestFailed = backups.find((b) => !b.manifest.verification?.ok);
  const removed: string[] = [];
  for (const backup of backups) {
    const tooOld = oldestKept !== undefined && backup.manifest.createdAt < oldestKept.manifest.createdAt;
    const olderFailure = !backup.manifest.verification?.ok && backup !== newestFailed;
    if (!tooOld && !olderFailure) continue;
    await rm(backup.path, { recursive: true, force: true });
    removed.push(backup.path);
  }
  for (const name of (await readdir(dir).catch(() => [])).filter((n) => n.startsWith('.fapiao-') && n.endsWith('.partial'))) {
    const path = join(dir, name);
    // A concurrent backup may finish (rename) its directory between the listing and this look.
    const modified = await stat(path).then((s) => s.mtimeMs, () => undefined);
    if (modified === undefined || now.getTime() - modified < STALE_PARTIAL_MS) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}
