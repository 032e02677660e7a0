// The sandbox tax service's own storage: one SQLite file, so it keeps its data across its own
// restarts, and so that several server processes mounting the sandbox on the same file see one
// tax service (WAL, every write transaction BEGIN IMMEDIATE, a busy timeout for the others).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';

const SCHEMA = `
create table if not exists keys (key_id text primary key, seller text not null, secret text not null, created_at text not null);
create index if not exists keys_by_seller on keys (seller);
create table if not exists nonces (key_id text not null, nonce text not null, at integer not null, primary key (key_id, nonce)) without rowid;
create index if not exists nonces_by_age on nonces (at);
create table if not exists blocks (block_id text primary key, seller text not null, year integer not null, first integer not null, last integer not null,
  request_id text not null, created_at text not null, unique (seller, request_id));
create index if not exists blocks_by_series on blocks (seller, year, last);
create table if not exists invoices (seller text not null, number text not null, digest text not null, kind text not null, issued_at text not null,
  issue_date text not null, buyer_tax_id text not null, total_amount_fen text not null, total_tax_fen text not null, content text not null,
  accepted_at text not null, primary key (seller, number));
create index if not exists invoices_by_date on invoices (seller, issue_date, number);
create table if not exists rejections (seller text not null, number text not null, reason_code text not null, reason text not null, at text not null,
  primary key (seller, number));
create table if not exists counters (seller text not null, number text not null, submissions integer not null default 0, accepted integer not null default 0,
  duplicates integer not null default 0, conflicts integer not null default 0, rejections integer not null default 0, failed integer not null default 0,
  echoes integer not null default 0, primary key (seller, number));
create table if not exists voids (seller text not null, number text not null, reason text not null, voided_at text not null, recorded_at text not null,
  primary key (seller, number));
create table if not exists faults (mode text primary key, rate real not null, until integer, params text not null, set_at integer not null);
create table if not exists terms (seller text primary key, terms text not null);
create table if not exists flow (seller text primary key, next_allowed_at integer not null);
`;

export type SandboxDb = SQLite.Database;

export function openSandboxDb(file: string): SandboxDb {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL'); // an acknowledged upload survives a crash of the sandbox
  // Another process may hold the write lock for a moment; transactions here are short.
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  addMissingColumns(db, 'counters', COUNTER_COLUMNS_SINCE_VOIDS);
  return db;
}

/** Counter columns added after the first release: a sandbox file made before gets them on open. */
const COUNTER_COLUMNS_SINCE_VOIDS = ['void_requests', 'voids', 'void_refusals'];

function addMissingColumns(db: SandboxDb, table: string, columns: readonly string[]): void {
  writeTx(db, () => {
    const present = new Set((db.prepare(`select name from pragma_table_info('${table}')`).all() as Array<{ name: string }>).map((c) => c.name));
    for (const column of columns) if (!present.has(column)) db.exec(`alter table ${table} add column ${column} integer not null default 0`);
  });
}

/** Runs `work` in one BEGIN IMMEDIATE transaction: reads inside see every other process's commits. */
export function writeTx<T>(db: SandboxDb, work: () => T): T {
  return db.transaction(work).immediate();
}
