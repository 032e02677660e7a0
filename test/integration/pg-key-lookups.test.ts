// On PostgreSQL, the statements that look rows up by a list of keys while holding a merchant's lock
// (or, for an issue batch's idempotency keys, just before asking for it) read only those rows,
// whatever the planner knows about the merchant. Asked as
// `merchant_id = $1 and key = any(…)`, a planner with no statistics yet (a new database, a table grown
// since the last ANALYZE) or with a merchant outside the sampled common values guessed the merchant
// had few rows, read all of them and filtered: time that grew with everything the merchant kept.
// Each plan test fills one table for one merchant with autovacuum off (statistics only when the test
// says), reads the plan of a full list of keys, and again after ANALYZE.
import { CompiledQuery, type Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMerchant } from '../../src/app/merchants.js';
import { systemClock } from '../../src/domain/time.js';
import { FIND_KEYS_ON_POSTGRES } from '../../src/store/repositories.js';
import { completeJobsOnPostgres, markUploadedOnPostgres, noteAcceptedVoidsOnPostgres, releaseJobsOnPostgres } from '../../src/store/upload-repositories.js';
import { postgres, type OpenedStore } from '../support/stores.js';

const AT = '2026-12-03T10:00:00.000+08:00';
const ROWS = 20_000;
const url = process.env.TEST_DATABASE_URL;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows the plan read from `table`: those it kept and those it read only to throw away (an update's own node writes the rows its scans read). */
function rowsRead(node: PlanNode, table: string): number {
  const own = node['Relation Name'] === table && node['Node Type'] !== 'ModifyTable'
    ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * node['Actual Loops']
    : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child, table), 0);
}

async function plan(db: Kysely<any>, query: CompiledQuery): Promise<PlanNode> {
  const { rows } = await db.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
    CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
  );
  return rows[0]!['QUERY PLAN'][0]!.Plan;
}

/** A full list (a batch's 100 keys, a submission's 500 numbers): the longer it is, the likelier a guess of few rows made reading them all look cheaper. */
const spread = <T>(count: number, pick: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => pick(Math.floor((i * ROWS) / count) + 1));

describe.skipIf(!url)('lookups by a list of keys on PostgreSQL, for a merchant with many rows', () => {
  let opened: OpenedStore;
  let db: Kysely<any>;
  let merchantId: string;

  beforeEach(async () => {
    opened = await postgres(url!).open();
    db = opened.connect().db;
    merchantId = (await addMerchant({ store: opened.store, clock: systemClock }, { name: '销售方', taxId: '91350100M000100Y43', regionCode: '35' })).id;
  });
  afterEach(async () => {
    await db.destroy();
    await opened.cleanup();
  });

  it('an issue batch reads only the idempotency keys it asks for', async () => {
    await opened.exec('alter table idempotency_keys set (autovacuum_enabled = off)');
    await opened.exec(`insert into idempotency_keys (merchant_id, key, request_hash, invoice_number, created_at)
      select '${merchantId}', 'key-' || g, 'h', '2635' || lpad(g::text, 16, '0'), '${AT}' from generate_series(1, ${ROWS}) g`);
    const used = spread(99, (i) => `key-${i}`);
    const asked = [...used, 'never-used'];
    const lookup = CompiledQuery.raw(FIND_KEYS_ON_POSTGRES, [merchantId, asked]);

    expect(rowsRead(await plan(db, lookup), 'idempotency_keys')).toBeLessThanOrEqual(asked.length);
    await opened.exec('analyze idempotency_keys');
    expect(rowsRead(await plan(db, lookup), 'idempotency_keys')).toBeLessThanOrEqual(asked.length);

    const found = await opened.store.read.idempotency.find(merchantId, asked);
    expect([...found.keys()].sort()).toEqual([...used].sort());
  });

  it("an upload's bookkeeping reads only the invoice states of the numbers it marks uploaded or notes accepted after their void", async () => {
    await opened.exec('alter table invoice_states set (autovacuum_enabled = off)');
    await opened.exec(`insert into invoice_states (merchant_id, number, status, status_changed_at)
      select '${merchantId}', '2635' || lpad(g::text, 16, '0'), case when g % 7 = 0 then 'voided' else 'issued' end, '${AT}'
      from generate_series(1, ${ROWS}) g`);
    const number = (i: number) => `2635${String(i).padStart(16, '0')}`;
    const first = spread(500, number);
    const second = spread(500, (i) => number(i + 1));

    expect(rowsRead(await plan(db, markUploadedOnPostgres(merchantId, first, AT).compile(db)), 'invoice_states')).toBeLessThanOrEqual(2 * first.length);
    await opened.exec('analyze invoice_states');
    expect(rowsRead(await plan(db, markUploadedOnPostgres(merchantId, second, AT).compile(db)), 'invoice_states')).toBeLessThanOrEqual(2 * second.length);

    // What it changes: the issued ones asked for, once each, not the voided ones, not another
    // merchant's invoice with the same number, and nothing twice.
    await opened.exec(`insert into invoice_states (merchant_id, number, status, status_changed_at) values ('someone-else', '${number(8)}', 'issued', '${AT}')`);
    const third = [number(7), number(8), number(9), number(9), 'never-issued'];
    expect((await opened.store.write((tx) => tx.uploads.markUploaded(merchantId, third, AT))).sort()).toEqual([number(8), number(9)]);
    expect(await opened.store.write((tx) => tx.uploads.markUploaded(merchantId, third, AT))).toEqual([]);
    const { rows: theirs } = await db.executeQuery<{ status: string }>(CompiledQuery.raw("select status from invoice_states where merchant_id = 'someone-else'"));
    expect(theirs).toEqual([{ status: 'issued' }]);
    const { rows } = await db.executeQuery<{ status: string; n: number }>(CompiledQuery.raw(
      `select status, count(*)::int as n from invoice_states where merchant_id = '${merchantId}' group by status order by status`,
    ));
    const voided = Math.floor(ROWS / 7);
    const marked = new Set([...first, ...second, number(8), number(9)].filter((n) => Number(n.slice(4)) % 7 !== 0)).size;
    expect(rows).toEqual([
      { status: 'issued', n: ROWS - voided - marked },
      { status: 'uploaded', n: marked },
      { status: 'voided', n: voided },
    ]);

    // The acceptance of invoices voided before their upload was accepted: the same lookups.
    const fourth = spread(500, (i) => number(i + 2));
    expect(rowsRead(await plan(db, noteAcceptedVoidsOnPostgres(merchantId, fourth, AT).compile(db)), 'invoice_states')).toBeLessThanOrEqual(2 * fourth.length);
    const fifth = [number(7), number(8), number(14), number(14), 'never-issued'];
    expect((await opened.store.write((tx) => tx.voids.uploadAccepted(merchantId, fifth, AT))).sort()).toEqual([number(7), number(14)]);
    expect(await opened.store.write((tx) => tx.voids.uploadAccepted(merchantId, fifth, AT))).toEqual([]);
  });

  /** ROWS pending upload jobs with subjects `prefix`1…, every fifth leased by 'other', the rest by 'me'; their ids in order. */
  async function pendingJobs(prefix: string, attempts: number): Promise<number[]> {
    await opened.exec('alter table outbox set (autovacuum_enabled = off)');
    await opened.exec(`insert into outbox (merchant_id, topic, subject, payload, created_at, available_at, attempts, lease_owner, lease_until)
      select '${merchantId}', 'invoice.upload', '${prefix}' || g, '{}', '${AT}', '${AT}', ${attempts}, case when g % 5 = 0 then 'other' else 'me' end, '2099-01-01T00:00:00.000+08:00'
      from generate_series(1, ${ROWS}) g`);
    const { rows } = await db.executeQuery<{ id: number }>(CompiledQuery.raw(`select id from outbox where subject like '${prefix}%' order by id`));
    return rows.map((j) => Number(j.id));
  }

  it("an upload's bookkeeping reads only the jobs it completes, however many are pending", async () => {
    const ids = await pendingJobs('n', 1);
    const held = (k: number) => k % 5 !== 4; // the k-th job is this owner's (the rest are 'other''s)
    const firstAt = spread(500, (i) => i - 1);
    const secondAt = spread(500, (i) => i % ROWS);
    const first = firstAt.map((k) => ids[k]!);
    const second = secondAt.map((k) => ids[k]!);

    expect(rowsRead(await plan(db, completeJobsOnPostgres(first, 'me', AT).compile(db)), 'outbox')).toBeLessThanOrEqual(2 * first.length);
    await opened.exec('analyze outbox');
    expect(rowsRead(await plan(db, completeJobsOnPostgres(second, 'me', AT).compile(db)), 'outbox')).toBeLessThanOrEqual(2 * second.length);

    // What it completes: jobs this owner still holds, not another's lease, not a job already done, not an unknown id.
    const [done, mine, theirs] = [ids[0]!, ids[2]!, ids[4]!];
    expect(await opened.store.write((tx) => tx.uploads.completeJobs([done, mine, theirs, 99_999_999], 'me', AT))).toEqual([mine]);
    const { rows } = await db.executeQuery<{ owner: string; done: boolean; n: number }>(CompiledQuery.raw(
      "select lease_owner as owner, done_at is not null as done, count(*)::int as n from outbox where subject like 'n%' group by 1, 2 order by 1, 2",
    ));
    const completed = new Set([...firstAt, ...secondAt, 2].filter(held)).size;
    expect(rows).toEqual([
      { owner: 'me', done: false, n: ROWS - ROWS / 5 - completed },
      { owner: 'me', done: true, n: completed },
      { owner: 'other', done: false, n: ROWS / 5 },
    ]);
  });

  it('giving jobs back after a failed submission reads only those jobs, however many are pending', async () => {
    const ids = await pendingJobs('g', 2);
    const LATER = '2026-12-03T10:05:00.000+08:00';
    const first = spread(500, (i) => ids[i - 1]!);
    const second = spread(500, (i) => ids[i % ROWS]!);

    expect(rowsRead(await plan(db, releaseJobsOnPostgres(first, 'me', LATER, true).compile(db)), 'outbox')).toBeLessThanOrEqual(2 * first.length);
    await opened.exec('analyze outbox');
    expect(rowsRead(await plan(db, releaseJobsOnPostgres(second, 'me', LATER, false).compile(db)), 'outbox')).toBeLessThanOrEqual(2 * second.length);

    // What it gives back: jobs this owner still holds, not another's lease, not a job already done, not an unknown id;
    // a submission that surely never reached the tax service (not counted) takes its attempt back.
    await opened.exec("update outbox set lease_owner = null, lease_until = null, available_at = '" + AT + "', attempts = 2 where subject like 'g%'");
    await opened.exec(`update outbox set lease_owner = case when id % 2 = 0 then 'me' else 'other' end where id in (${ids.slice(0, 4).join(', ')})`);
    await opened.exec(`update outbox set done_at = '${AT}' where id = ${ids[0]}`);
    const owned = (k: number) => (ids[k]! % 2 === 0 ? 'me' : 'other');
    const given = await opened.store.write((tx) => tx.uploads.releaseJobs([...ids.slice(0, 4), 99_999_999], 'me', LATER, false));
    expect(given).toBe([1, 2, 3].filter((k) => owned(k) === 'me').length);
    const { rows } = await db.executeQuery<{ id: number; owner: string | null; available_at: string; attempts: number }>(CompiledQuery.raw(
      `select id, lease_owner as owner, available_at, attempts from outbox where id in (${ids.slice(0, 4).join(', ')}) order by id`,
    ));
    expect(rows.map((r) => ({ ...r, id: Number(r.id), attempts: Number(r.attempts) }))).toEqual(ids.slice(0, 4).map((id, k) => {
      const released = k > 0 && owned(k) === 'me';
      return { id, owner: released ? null : owned(k), available_at: released ? LATER : AT, attempts: released ? 1 : 2 };
    }));
  });

  // Completion updates the rows found at their addresses; a row another transaction changes while the
  // update waits for it has a new one, and PostgreSQL checks the update's conditions on that version.
  it('passes over a job whose lease another process takes while the completion waits for it', async () => {
    await opened.exec(`insert into outbox (merchant_id, topic, subject, payload, created_at, available_at, attempts, lease_owner, lease_until)
      select '${merchantId}', 'invoice.upload', 'r' || g, '{}', '${AT}', '${AT}', 1, 'me', '2099-01-01T00:00:00.000+08:00' from generate_series(1, 2) g`);
    const { rows: jobs } = await db.executeQuery<{ id: number }>(CompiledQuery.raw("select id from outbox where subject like 'r%' order by id"));
    const [taken, kept] = jobs.map((j) => Number(j.id));
    const completed = await db.connection().execute(async (other) => {
      await sql`begin`.execute(other);
      await sql`update outbox set lease_owner = 'other', attempts = attempts + 1 where id = ${taken}`.execute(other);
      let settled = false;
      const completing = opened.store.write((tx) => tx.uploads.completeJobs([taken!, kept!], 'me', AT)).finally(() => void (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false); // waiting for the row the other transaction holds
      await sql`commit`.execute(other);
      return completing;
    });
    expect(completed).toEqual([kept]);
    const { rows } = await db.executeQuery<{ id: number; owner: string; done: boolean }>(CompiledQuery.raw(
      "select id, lease_owner as owner, done_at is not null as done from outbox where subject like 'r%' order by id",
    ));
    expect(rows.map((r) => ({ ...r, id: Number(r.id) }))).toEqual([{ id: taken, owner: 'other', done: false }, { id: kept, owner: 'me', done: true }]);
  });
});
