// manifest.json: what a backup holds and how to check it. Restore trusts nothing in a backup
// directory before its manifest has been read and checked here.
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { bilingual, Fault, faults, originalOf, withOriginal, type Bilingual } from '../../domain/faults.js';
import { LATEST_SCHEMA_VERSION } from '../migrate.js';

export const MANIFEST_FILE = 'manifest.json';
const FORMAT = 'fapiao-backup';
const FORMAT_VERSION = 1;

export type Dialect = 'sqlite' | 'postgres';
export type Progress = (line: string) => void;

const ChainHeadRow = z.object({ scope: z.string(), hash: z.string(), length: z.number().int().nonnegative() });
export type ChainHeadRow = z.infer<typeof ChainHeadRow>;

/** What a database holds, all read from one consistent snapshot. */
export interface DataFacts {
  rowCounts: Record<string, number>;
  chainHeads: ChainHeadRow[];
  merchants: string[];
  /** Applied migrations, by name. */
  migrations: string[];
}

const Verification = z.object({
  ok: z.boolean(),
  at: z.string(),
  seconds: z.number(),
  /** Migrations the copy needed to reach the schema of the program that verified it. */
  migrated: z.array(z.string()),
  invoices: z.number(),
  auditEntries: z.number(),
  problems: z.array(z.string()),
});
export type Verification = z.infer<typeof Verification>;

const Manifest = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.number().int(),
  createdAt: z.string(),
  dialect: z.enum(['sqlite', 'postgres']),
  tools: z.record(z.string(), z.string()),
  schema: z.object({ latest: z.string().nullable(), applied: z.array(z.string()) }),
  /** PostgreSQL only: the schema the dump was taken from (its tables are named with it). */
  postgresSchema: z.string().optional(),
  dataFile: z.string(),
  files: z.record(z.string(), z.object({ size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
  /** Never the key: only that the data file is encrypted, how, and a check value to tell a wrong key at once. */
  encryption: z.object({ algorithm: z.literal('aes-256-gcm'), layout: z.string(), keyCheck: z.string() }).nullable(),
  rowCounts: z.record(z.string(), z.number().int().nonnegative()),
  merchants: z.array(z.string()),
  chainHeads: z.array(ChainHeadRow),
  verification: Verification.nullable(),
});
export type Manifest = z.infer<typeof Manifest>;

export function newManifest(fields: Omit<Manifest, 'format' | 'formatVersion' | 'schema' | 'rowCounts' | 'merchants' | 'chainHeads'>, facts: DataFacts): Manifest {
  const { createdAt, dialect, tools, postgresSchema, dataFile, files, encryption, verification } = fields;
  return {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    createdAt,
    dialect,
    tools,
    schema: { latest: facts.migrations.at(-1) ?? null, applied: facts.migrations },
    ...(postgresSchema !== undefined && { postgresSchema }),
    dataFile,
    files,
    encryption,
    rowCounts: facts.rowCounts,
    merchants: facts.merchants,
    chainHeads: facts.chainHeads,
    verification,
  };
}

/** `fapiao-20261122T031500.123Z-sqlite`: sorts by time, says what it is, no characters a shell or Windows dislikes. */
export function backupName(at: Date, dialect: Dialect): string {
  return `fapiao-${at.toISOString().replace(/[-:]/g, '')}-${dialect}`;
}

export const BACKUP_NAME = /^fapiao-\d{8}T\d{6}\.\d{3}Z-(sqlite|postgres)$/;

export async function readManifest(dir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch (error) {
    throw new Fault(faults.BACKUP_FOREIGN, {
      reason: withOriginal(`${dir} 中没有可读取的 ${MANIFEST_FILE}`, originalOf(error), `${dir} has no readable ${MANIFEST_FILE}`),
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Fault(faults.BACKUP_CORRUPT, { reason: bilingual(`${MANIFEST_FILE} 不是有效的 JSON`, `${MANIFEST_FILE} is not valid JSON`) });
  }
  const shape = raw as { format?: unknown; formatVersion?: unknown };
  if (shape?.format !== FORMAT) throw new Fault(faults.BACKUP_FOREIGN, { reason: bilingual(`${MANIFEST_FILE} 不是 Fapiao 备份清单`, `${MANIFEST_FILE} is not a Fapiao backup manifest`) });
  if (typeof shape.formatVersion === 'number' && shape.formatVersion > FORMAT_VERSION) {
    throw new Fault(faults.BACKUP_FROM_NEWER_VERSION, { version: backupFormat(shape.formatVersion), supported: backupFormat(FORMAT_VERSION) });
  }
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Fault(faults.BACKUP_CORRUPT, { reason: withOriginal(`${MANIFEST_FILE} 内容不完整或格式不对`, `${MANIFEST_FILE}: ${issue.path.join('.') || '(top)'} ${issue.message}`) });
  }
  return parsed.data;
}

/** The checks that need only the manifest: cheap, so they come before any file is read. */
export function checkUsable(manifest: Manifest, dialect: Dialect): void {
  if (manifest.dialect !== dialect) {
    throw new Fault(faults.BACKUP_FOREIGN, {
      reason: bilingual(`这是 ${manifest.dialect} 数据库的备份，而当前配置的数据库是 ${dialect}`, `it is a ${manifest.dialect} backup and the configured database is ${dialect}`),
    });
  }
  // Migration names start with a zero-padded number, so they sort in the order they were written.
  if (manifest.schema.latest !== null && manifest.schema.latest > LATEST_SCHEMA_VERSION) {
    throw new Fault(faults.BACKUP_FROM_NEWER_VERSION, { version: schemaVersion(manifest.schema.latest), supported: schemaVersion(LATEST_SCHEMA_VERSION) });
  }
}

/** Written beside the data and renamed into place, so a torn write never leaves half a manifest. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const temporary = join(dir, `${MANIFEST_FILE}.tmp`);
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  const handle = await open(temporary, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, join(dir, MANIFEST_FILE));
}

/** The differences between what a manifest promises and what a restored copy holds. */
export function compareFacts(manifest: Manifest, facts: DataFacts): string[] {
  const problems: string[] = [];
  const tables = [...new Set([...Object.keys(manifest.rowCounts), ...Object.keys(facts.rowCounts)])].sort();
  for (const table of tables) {
    const promised = manifest.rowCounts[table];
    const found = facts.rowCounts[table];
    if (promised !== found) problems.push(`table ${table}: ${found ?? 'missing'} rows, the manifest says ${promised ?? 'no such table'}`);
  }
  const heads = (rows: ChainHeadRow[]) => new Map(rows.map((r) => [r.scope, `${r.length}:${r.hash}`]));
  const promisedHeads = heads(manifest.chainHeads);
  const foundHeads = heads(facts.chainHeads);
  for (const scope of [...new Set([...promisedHeads.keys(), ...foundHeads.keys()])].sort()) {
    if (promisedHeads.get(scope) !== foundHeads.get(scope)) problems.push(`chain head ${scope} does not match the manifest`);
  }
  if ([...manifest.merchants].sort().join() !== [...facts.merchants].sort().join()) problems.push('the merchants differ from the manifest');
  if (manifest.schema.applied.join() !== facts.migrations.join()) problems.push(`applied migrations ${facts.migrations.join(', ') || 'none'} differ from the manifest`);
  return problems;
}

function backupFormat(version: number): Bilingual {
  return bilingual(`备份格式 ${version}`, `backup format ${version}`);
}

function schemaVersion(version: string): Bilingual {
  return bilingual(`数据库结构 ${version}`, `schema ${version}`);
}
