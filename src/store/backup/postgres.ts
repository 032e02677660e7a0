// PostgreSQL backups: pg_dump of one schema from an exported snapshot, restored for checking into
// a scratch database, and moved into the live database in one transaction.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { bilingual, Fault, faults, withOriginal } from '../../domain/faults.js';
import type { StoreConfig } from '../database.js';
import type { DialectBackup, ScratchDatabase } from './dialect.js';
import type { DataFacts, Progress } from './manifest.js';
import { oneHostUrl } from '../pg-hosts.js';

/** How long a real restore waits for running transactions on the live schema before refusing. */
const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

export function postgresBackup(config: StoreConfig & { databaseUrl: string }, options: { lockTimeoutMs?: number } = {}): DialectBackup {
  // A host list (docs/deploy.md) comes down to the host that takes writes, once per step: node-postgres
  // cannot parse a list, and a snapshot, the scratch copy and the move-in must each stay on one server.
  const url = () => oneHostUrl(config.databaseUrl, { connectionTimeoutMillis: 3_000 });
  return {
    dialect: 'postgres',
    dataFile: 'fapiao.dump',
    copiesDataFile: false, // pg_restore only reads it
    snapshot: async (target, progress) => snapshot(await url(), config.schema, target, progress),
    scratch: async (plainFile, _work, manifest, progress) => scratch(await url(), config.dataDir, plainFile, manifest.postgresSchema ?? 'public', progress),
    // The live schema is taken over inside the restore transaction; busy is found there (lock timeout).
    checkNotInUse: async () => undefined,
    moveIn: async (copy, progress) => moveIn(await url(), config.schema, copy, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, progress),
  };
}

async function snapshot(url: string, configuredSchema: string | undefined, target: string, progress: Progress) {
  return withClient(url, async (db) => {
    // pg_dump joins this transaction's snapshot, so the facts read here and the dump it writes are
    // the same state of the database, however many invoices are issued meanwhile.
    await db.query('begin isolation level repeatable read read only');
    const schema = configuredSchema ?? (await currentSchema(db));
    const { rows } = await db.query<{ snapshot: string; version: string }>(`select pg_export_snapshot() as snapshot, current_setting('server_version') as version`);
    const facts = await readFacts(db, schema);
    progress(`pg_dump of schema ${schema} …`);
    await run('pg_dump', ['--format=custom', `--snapshot=${rows[0]!.snapshot}`, `--schema=${pattern(schema)}`, '--no-owner', '--no-privileges', `--file=${target}`], url);
    await db.query('commit');
    const pgDump = (await run('pg_dump', ['--version'])).trim();
    return { facts, tools: { postgres: rows[0]!.version, pg_dump: pgDump }, postgresSchema: schema };
  });
}

async function currentSchema(db: pg.Client): Promise<string> {
  const { rows } = await db.query<{ schema: string | null }>('select current_schema() as schema');
  return rows[0]?.schema ?? 'public';
}

async function readFacts(db: pg.Client, schema: string): Promise<DataFacts> {
  const { rows } = await db.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE'`, [schema]);
  const tables = rows.map((r) => r.name).sort();
  const has = new Set(tables);
  const table = (name: string) => `${ident(schema)}.${ident(name)}`;
  const column = async (query: string) => (await db.query<{ v: string }>(query)).rows.map((r) => r.v).sort();
  const rowCounts: Record<string, number> = {};
  for (const name of tables) rowCounts[name] = Number((await db.query<{ n: string }>(`select count(*) as n from ${table(name)}`)).rows[0]!.n);
  const heads = has.has('chain_heads') ? (await db.query<{ scope: string; hash: string; length: string }>(`select scope, hash, length from ${table('chain_heads')}`)).rows : [];
  return {
    rowCounts,
    chainHeads: heads.map((r) => ({ scope: r.scope, hash: r.hash, length: Number(r.length) })).sort((a, b) => (a.scope < b.scope ? -1 : 1)),
    merchants: has.has('merchants') ? await column(`select id as v from ${table('merchants')}`) : [],
    migrations: has.has('kysely_migration') ? await column(`select name as v from ${table('kysely_migration')}`) : [],
  };
}

/** A scratch database older than this was left by a check that was killed: nothing uses it any more. */
const STALE_SCRATCH_SECONDS = 24 * 3600;

/**
 * A database of its own on the same server (needs CREATEDB), so the dump keeps its schema name. Its
 * name carries its creation time, so that copies left by checks killed half-way (a restart during
 * a scheduled backup) are dropped by a later check instead of filling the server's disk.
 */
async function scratch(url: string, dataDir: string, dumpFile: string, schema: string, progress: Progress): Promise<ScratchDatabase> {
  const now = Math.floor(Date.now() / 1000);
  const name = `fapiao_scratch_${now}_${randomBytes(6).toString('hex')}`;
  await withClient(url, async (db) => {
    const { rows } = await db.query<{ name: string }>(String.raw`select datname as name from pg_database where datname ~ '^fapiao_scratch_\d+_[0-9a-f]+$' and pg_get_userbyid(datdba) = current_user`);
    for (const stale of rows.filter((r) => Number(r.name.split('_')[2]) < now - STALE_SCRATCH_SECONDS)) {
      progress(`dropping ${stale.name}, left by a check that did not finish …`);
      // Best effort: one that cannot be dropped now (a session still in it) holds no check back.
      await db.query(`drop database if exists ${ident(stale.name)} with (force)`).catch(() => undefined);
    }
    await db.query(`create database ${name}`);
  });
  const scratchUrl = withDatabaseName(url, name);
  const discard = () => withClient(url, (db) => db.query(`drop database if exists ${name} with (force)`)).then(() => undefined);
  try {
    // A new database already has a public schema; the dump of one creates it itself.
    if (schema === 'public') await withClient(scratchUrl, (db) => db.query('drop schema public'));
    progress(`pg_restore into scratch database ${name} …`);
    await run('pg_restore', ['--exit-on-error', '--no-owner', '--no-privileges', dumpFile], scratchUrl);
  } catch (error) {
    await discard();
    throw error;
  }
  return {
    config: { dataDir, databaseUrl: scratchUrl, schema },
    facts: () => withClient(scratchUrl, (db) => readFacts(db, schema)),
    discard,
  };
}

/**
 * The verified copy goes in as ONE transaction: drop the live schema, create it again from the
 * copy. Any failure rolls back to the database as it was; running servers wait on the locks and
 * then see the restored data. A schema held longer than the lock timeout is refused as in use.
 *
 * The transaction is committed only once pg_dump has written the whole copy and exited 0. With
 * psql's --single-transaction, the end of its input committed whatever had arrived: a pg_dump that
 * failed at once (an older pg_dump refusing a newer server) committed the DROP SCHEMA alone, and a
 * restore killed half-way committed half a schema. Now psql meets the end of its input with the
 * transaction still open, and the server rolls it back.
 */
async function moveIn(url: string, configuredSchema: string | undefined, copy: ScratchDatabase, lockTimeoutMs: number, progress: Progress): Promise<undefined> {
  const scratchUrl = copy.config.databaseUrl!;
  const copySchema = copy.config.schema!;
  const target = configuredSchema ?? (await withClient(url, currentSchema));
  // The dump names every table with its schema; renaming the copy's schema first restores it
  // under the configured name (a backup may come from another schema).
  if (copySchema !== target) await withClient(scratchUrl, (db) => db.query(`alter schema ${ident(copySchema)} rename to ${ident(target)}`));
  progress(`replacing schema ${target} in one transaction …`);
  const prelude = `BEGIN;\nSET LOCAL lock_timeout = ${lockTimeoutMs};\nDROP SCHEMA IF EXISTS ${ident(target)} CASCADE;\n`;
  const dump = spawnTool('pg_dump', ['--format=plain', '--no-owner', '--no-privileges', `--schema=${pattern(target)}`], { url: scratchUrl, streamOut: true });
  const psql = spawnTool('psql', ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--file=-'], { url });
  psql.child.stdin.on('error', () => undefined); // psql stopping early shows in its exit status
  psql.child.stdin.write(prelude);
  dump.child.stdout.pipe(psql.child.stdin, { end: false });
  const dumpedWhole = dump.done.then(() => true, () => false);
  void dumpedWhole.then((whole) => psql.child.stdin.end(whole ? 'COMMIT;\n' : undefined));
  // psql stopping first (a lock timeout, an error) leaves pg_dump blocked on a full pipe for good.
  void psql.done.catch(() => dump.child.kill());
  const [dumped, restored] = await Promise.allSettled([dump.done, psql.done]);
  if (restored.status === 'rejected') {
    const message = (restored.reason as Error).message;
    if (/lock timeout/i.test(message)) throw new Fault(faults.RESTORE_DATABASE_IN_USE, {
      reason: bilingual(`模式（schema）${target} 被其他会话锁定超过 ${lockTimeoutMs} 毫秒`, `schema ${target} stayed locked for ${lockTimeoutMs} ms by other sessions`),
    });
    throw new Fault(faults.RESTORE_FAILED, { reason: withOriginal('psql 导入失败', message) });
  }
  if (dumped.status === 'rejected') throw new Fault(faults.RESTORE_FAILED, { reason: withOriginal('pg_dump 导出失败', (dumped.reason as Error).message) });
  return undefined;
}

async function withClient<T>(url: string, work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** pg_dump's --schema takes a pattern; a quoted name matches only itself. */
function pattern(schema: string): string {
  return ident(schema);
}

function withDatabaseName(url: string, database: string): string {
  const match = /^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?(.*)$/i.exec(url);
  if (!match) throw new Error('DATABASE_URL must be a postgres:// URL');
  return `${match[1]}/${encodeURIComponent(database)}${match[3] ?? ''}`;
}

/**
 * libpq tools take the URL as it is (host lists, sslmode and all); only the password moves to
 * PGPASSWORD so it never shows in `ps`. The child otherwise inherits this process's environment.
 */
function libpq(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const env = { ...process.env };
  const match = /^(postgres(?:ql)?:\/\/)([^@/?#]*)@(.*)$/i.exec(url);
  const colon = match?.[2]!.indexOf(':') ?? -1;
  if (!match || colon < 0) return { dbname: url, env };
  return { dbname: `${match[1]}${match[2]!.slice(0, colon)}@${match[3]}`, env: { ...env, PGPASSWORD: decodeURIComponent(match[2]!.slice(colon + 1)) } };
}

/** Runs a libpq tool against `url`; `streamOut` leaves stdout to the caller (a pipe) instead of collecting it. */
function spawnTool(command: string, args: string[], options: { url?: string; streamOut?: boolean } = {}) {
  const connection = options.url ? libpq(options.url) : undefined;
  const child = spawn(command, connection ? [`--dbname=${connection.dbname}`, ...args] : args, { env: connection?.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  if (!options.streamOut) child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'ENOENT' ? `${command} was not found on PATH (install the PostgreSQL client tools)` : `${command}: ${error.message}`)),
    );
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`))));
  });
  return { child, done };
}

function run(command: string, args: string[], url?: string): Promise<string> {
  const { child, done } = spawnTool(command, args, { url });
  child.stdin.end();
  return done;
}
