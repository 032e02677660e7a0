// Private PostgreSQL clusters for the outage and failover tests: each in a temporary directory,
// on a port and a unix-socket directory of its own, run as the `postgres` user (the server refuses
// to run as root). Never the system cluster on 5432. A single cluster can be crashed
// (`pg_ctl stop -m immediate`) and started again on the same port; a primary with a synchronous
// standby can lose its primary to kill -9 and have the standby promoted.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, processTree, sleep } from './server-process.js';

export const PG_BIN = process.env.FAPIAO_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** The PostgreSQL programs these tests need are installed (tests skip themselves otherwise). */
export const postgresInstalled = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'].every((program) => existsSync(join(PG_BIN, program)));

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL program as the `postgres` user when we are root, as ourselves otherwise. */
function pgRun(program: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, program), ...args]] : [join(PG_BIN, program), args];
  return new Promise((resolveRun, reject) => {
    execFile(file, argv, { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}

function ownedByPostgres(path: string): void {
  if (!asRoot) return;
  const [uid, gid] = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields[0] === 'postgres')
    .map((fields) => [Number(fields[2]), Number(fields[3])])[0] ?? [NaN, NaN];
  if (!Number.isInteger(uid)) throw new Error('there is no `postgres` user to run the server as');
  chownSync(path, uid!, gid!);
}

/** Running, not merely a zombie waiting for whoever adopted it to reap it. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** One PostgreSQL server: a data directory, a port, and the controls a chaos test needs. */
export class PgNode {
  constructor(
    readonly name: string,
    readonly root: string,
    readonly port: number,
  ) {}

  get dataDir(): string {
    return join(this.root, this.name);
  }

  get logFile(): string {
    return join(this.root, `${this.name}.log`);
  }

  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication). */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The postmaster's pid while its pid file names a live process. */
  pid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async start(): Promise<void> {
    await pgRun('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start']);
  }

  /** Stops the server; `immediate` is a crash as far as the data is concerned (recovery on start). */
  async stop(mode: 'immediate' | 'fast' = 'immediate'): Promise<void> {
    if (this.pid() === undefined) return;
    await pgRun('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** The machine dies: SIGKILL to the postmaster and every process it started, all at once. */
  async kill9(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    const members = processTree(pid);
    for (const member of members) {
      try {
        process.kill(member, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (let waited = 0; members.some(alive); waited += 10) {
      if (waited > 10_000) throw new Error(`${this.name}: processes ${members.filter(alive).join(', ')} survived SIGKILL`);
      await sleep(10);
    }
  }

  /** A standby becomes a primary; resolves once it takes writes. */
  async promote(): Promise<void> {
    await pgRun('pg_ctl', ['-D', this.dataDir, '-w', '-t', '60', 'promote']);
  }

  async query<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The server log, for a failed test's message. */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-5_000);
    } catch {
      return '';
    }
  }
}

function settings(root: string, port: number, extra: Record<string, string | number> = {}): string {
  const all: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${root}'`,
    fsync: 'on',
    synchronous_commit: 'on',
    full_page_writes: 'on',
    max_connections: 100,
    shared_buffers: "'32MB'",
    ...extra,
  };
  return '\n# fapiao test cluster\n' + Object.entries(all).map(([key, value]) => `${key} = ${value}`).join('\n') + '\n';
}

/** Clusters not yet removed, stopped even if the test process ends without its afterAll. */
const live = new Map<string, PgNode[]>();
process.once('exit', () => {
  for (const [root, nodes] of live) {
    for (const node of nodes) {
      if (node.pid() === undefined) continue;
      const argv = [join(PG_BIN, 'pg_ctl'), '-D', node.dataDir, '-m', 'immediate', '-w', 'stop'];
      try {
        execFileSync(asRoot ? 'runuser' : argv[0]!, asRoot ? ['-u', 'postgres', '--', ...argv] : argv.slice(1), { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // nothing more can be done from an exit handler
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
});

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'fapiao-pg-'));
  ownedByPostgres(root);
  return root;
}

async function initCluster(node: PgNode, extra: Record<string, string | number> = {}): Promise<void> {
  // --no-sync only skips initdb's own flush of the fresh files; the server itself runs with fsync on.
  await pgRun('initdb', ['-D', node.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  appendFileSync(join(node.dataDir, 'postgresql.conf'), settings(node.root, node.port, extra));
}

async function removeRoot(root: string, nodes: PgNode[]): Promise<void> {
  for (const node of nodes) {
    await node.stop('immediate').catch(() => node.kill9());
  }
  rmSync(root, { recursive: true, force: true });
  live.delete(root);
}

export interface PgSingle {
  node: PgNode;
  url: string;
  /** Stops the server (if running) and deletes its directory. */
  remove(): Promise<void>;
}

/** One private cluster, started. */
export async function startCluster(): Promise<PgSingle> {
  const root = tempRoot();
  const node = new PgNode('db', root, await freePort());
  live.set(root, [node]);
  try {
    await initCluster(node);
    await node.start();
  } catch (error) {
    await removeRoot(root, [node]);
    throw error;
  }
  return { node, url: node.url, remove: () => removeRoot(root, [node]) };
}

export interface PgPair {
  primary: PgNode;
  standby: PgNode;
  /** Both hosts, the one that takes writes wins: what a client configured for failover uses. */
  url: string;
  remove(): Promise<void>;
}

const STANDBY_NAME = 'standby1';

/** A primary and a synchronous standby (every commit is on both before it is acknowledged). */
export async function startPrimaryWithSyncStandby(): Promise<PgPair> {
  const root = tempRoot();
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const primary = new PgNode('primary', root, primaryPort);
  const standby = new PgNode('standby', root, standbyPort);
  live.set(root, [primary, standby]);
  const pair: PgPair = {
    primary,
    standby,
    url: `postgres://postgres@127.0.0.1:${primaryPort},127.0.0.1:${standbyPort}/postgres?target_session_attrs=read-write`,
    remove: () => removeRoot(root, [primary, standby]),
  };
  try {
    await initCluster(primary, { wal_level: 'replica', synchronous_standby_names: `'${STANDBY_NAME}'`, max_wal_senders: 5 });
    await primary.start();
    await pgRun('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', standby.dataDir, '-R', '-X', 'stream', '-c', 'fast']);
    // The copy carries the primary's settings: give it its own port, and no synchronous standby of
    // its own — once promoted it is alone, and waiting for a standby that does not exist would hang
    // every commit.
    appendFileSync(join(standby.dataDir, 'postgresql.conf'), settings(root, standbyPort, { synchronous_standby_names: "''" }));
    appendFileSync(
      join(standby.dataDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=postgres application_name=${STANDBY_NAME}'\n`,
    );
    await standby.start();
    await waitForSyncStandby(primary);
  } catch (error) {
    await pair.remove();
    throw error;
  }
  return pair;
}

async function waitForSyncStandby(primary: PgNode, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'nothing';
  while (Date.now() < deadline) {
    const rows = await primary.query<{ application_name: string; sync_state: string }>('select application_name, sync_state from pg_stat_replication');
    if (rows.some((r) => r.application_name === STANDBY_NAME && r.sync_state === 'sync')) return;
    seen = JSON.stringify(rows);
    await sleep(100);
  }
  throw new Error(`the standby did not become synchronous within ${timeoutMs} ms (pg_stat_replication: ${seen})`);
}

export interface PgArchiving extends PgSingle {
  /** Where the server copies every finished WAL segment (archive_command). */
  archiveDir: string;
  /** `pg_basebackup -Ft -z -X fetch` into a new directory, as docs/deploy.md prescribes; returns it. */
  baseBackup(): Promise<string>;
  /** Forces the current WAL segment out and waits until the archiver has copied it. */
  archiveCurrentWal(): Promise<void>;
  /**
   * Point-in-time recovery as docs/deploy.md describes it: the base backup unpacked into an empty
   * data directory, restore_command reading the archive, recovery_target_time, recovery.signal.
   * Resolves once the recovered server has promoted and takes writes.
   */
  recoverTo(baseBackupDir: string, targetTime: string): Promise<PgNode>;
}

/** One cluster with continuous WAL archiving (for point-in-time recovery). */
export async function startArchivingCluster(): Promise<PgArchiving> {
  const root = tempRoot();
  const archiveDir = join(root, 'wal-archive');
  const node = new PgNode('db', root, await freePort());
  const nodes = [node];
  live.set(root, nodes);
  const remove = () => removeRoot(root, nodes);
  try {
    mkdirSync(archiveDir);
    ownedByPostgres(archiveDir);
    await initCluster(node, {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `'test ! -f ${archiveDir}/%f && cp %p ${archiveDir}/%f'`,
      max_wal_senders: 5,
    });
    await node.start();
  } catch (error) {
    await remove();
    throw error;
  }
  let backups = 0;
  return {
    node,
    url: node.url,
    archiveDir,
    remove,
    async baseBackup() {
      const dir = join(root, `base-${++backups}`);
      await pgRun('pg_basebackup', ['-h', '127.0.0.1', '-p', String(node.port), '-U', 'postgres', '-D', dir, '-Ft', '-z', '-X', 'fetch', '-c', 'fast']);
      return dir;
    },
    async archiveCurrentWal() {
      const [{ wal }] = (await node.query<{ wal: string }>('select pg_walfile_name(pg_switch_wal()) as wal')) as [{ wal: string }];
      const deadline = Date.now() + 30_000;
      while (!existsSync(join(archiveDir, wal))) {
        if (Date.now() > deadline) throw new Error(`WAL segment ${wal} was not archived within 30 s:\n${node.log()}`);
        await sleep(50);
      }
    },
    async recoverTo(baseBackupDir, targetTime) {
      const recovered = new PgNode(`recovered-${nodes.length}`, root, await freePort());
      nodes.push(recovered);
      mkdirSync(recovered.dataDir, { mode: 0o700 });
      execFileSync('tar', ['-xzf', join(baseBackupDir, 'base.tar.gz'), '-C', recovered.dataDir]);
      appendFileSync(
        join(recovered.dataDir, 'postgresql.conf'),
        settings(root, recovered.port, {
          archive_mode: 'off',
          restore_command: `'cp ${archiveDir}/%f %p'`,
          recovery_target_time: `'${targetTime}'`,
          recovery_target_action: "'promote'",
        }),
      );
      writeFileSync(join(recovered.dataDir, 'recovery.signal'), '');
      if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', recovered.dataDir]);
      await recovered.start();
      const deadline = Date.now() + 60_000;
      while ((await recovered.query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]?.r !== false) {
        if (Date.now() > deadline) throw new Error(`the recovered server did not promote within 60 s:\n${recovered.log()}`);
        await sleep(100);
      }
      return recovered;
    },
  };
}
