// Number blocks, the upload backlog and the connection state, on both dialects. Every query on
// merchant data is scoped by merchant id.
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';
import type { BacklogRow, NumberBlockRecord, UploadProblem, UploadProblemState, UploadRepositories, UpstreamState } from '../app/upload-ports.js';
import { backlogPeriod } from '../domain/contingency.js';
import { invoiceKinds, type InvoiceKind } from '../domain/invoice.js';
import { arg, prepare, prepareRows, rowArg } from './prepared.js';
import { rowToInvoice } from './repositories.js';
import { preTaxFenText } from './hot-queries.js';

type Db = Kysely<Database>;
type Dialect = 'sqlite' | 'postgres';

// On the path of every issue, so prepared once per dialect like the other hot statements: the
// open blocks of (merchant, year), oldest first, through the partial index of open blocks. The
// merchant's row lock (taken first by the issue) serialises numbering across instances.
const openBlocks = prepare<{ merchantId: string; year: number }, { block_id: string; next_seq: number | string; last_seq: number | string }>((db) =>
  db
    .selectFrom('number_blocks')
    .select(['block_id', 'next_seq', 'last_seq'])
    .where('merchant_id', '=', arg('merchantId'))
    .where('year', '=', arg('year'))
    .where(sql.ref('next_seq'), '<=', sql.ref('last_seq'))
    .orderBy('first_seq'),
);
// On every GET of one invoice: the invoice and what the tax service said about it (if anything),
// in one statement, one round trip on PostgreSQL.
const findInvoiceWithProblem = prepare<{ merchantId: string; number: string }, Database['invoices'] & ProblemColumns>((db) =>
  db
    .selectFrom('invoices')
    .leftJoin('invoice_uploads as u', (join) => join.onRef('u.merchant_id', '=', 'invoices.merchant_id').onRef('u.number', '=', 'invoices.number'))
    .selectAll('invoices')
    .select([
      'u.state as problem_state', 'u.reason_code as problem_reason_code', 'u.reason as problem_reason', 'u.local_digest as problem_local_digest',
      'u.held_digest as problem_held_digest', 'u.upstream_record as problem_upstream_record', 'u.at as problem_at',
    ])
    .where('invoices.merchant_id', '=', arg('merchantId'))
    .where('invoices.number', '=', arg('number')),
);
type ProblemColumns = {
  problem_state: string | null; problem_reason_code: string | null; problem_reason: string | null; problem_local_digest: string | null;
  problem_held_digest: string | null; problem_upstream_record: string | null; problem_at: string | null;
};

// What the tax service said about one invoice, if anything.
const findProblem = prepare<{ merchantId: string; number: string }, Database['invoice_uploads']>((db) =>
  db.selectFrom('invoice_uploads').selectAll().where('merchant_id', '=', arg('merchantId')).where('number', '=', arg('number')),
);

// On the path of every issue: the upload jobs and the records they will send, a statement each
// for a whole issue batch. The jobs come back with their ids by invoice number (the order of
// RETURNING rows is not promised).
type JobFields = { merchantId: string; number: string; payload: string; at: string };
const insertJobs = prepareRows<JobFields, { id: number | string; subject: string }>((db, rows) =>
  db
    .insertInto('outbox')
    .values(
      Array.from({ length: rows }, (_, i) => ({
        merchant_id: rowArg<string>('merchantId', i), topic: 'invoice.upload', subject: rowArg<string>('number', i), payload: rowArg<string>('payload', i),
        created_at: rowArg<string>('at', i), available_at: rowArg<string>('at', i), attempts: 0,
      })),
    )
    .returning(['id', 'subject']),
);
const insertRecords = prepareRows<{ jobId: number; merchantId: string; json: string; kind: string; preTaxFen: string; digest: string }, never>((db, rows) =>
  db.insertInto('upload_records').values(Array.from({ length: rows }, (_, i) => ({
    job_id: rowArg('jobId', i), merchant_id: rowArg('merchantId', i), record: rowArg('json', i), kind: rowArg('kind', i), pre_tax_fen: rowArg('preTaxFen', i), digest: rowArg('digest', i),
  }))),
);

export function uploadRepositories(db: Db, dialect: Dialect): UploadRepositories {
  return { numberBlocks: numberBlocks(db, dialect), uploads: uploads(db, dialect), voids: voids(db, dialect), upstreamState: upstreamState(db), terms: terms(db) };
}

function voids(db: Db, dialect: Dialect): UploadRepositories['voids'] {
  return {
    async record(merchantId, number, v) {
      await db
        .updateTable('invoice_states')
        .set({ status: 'voided', status_changed_at: v.at, void_reason: v.reason, uploaded_at: v.uploadedAt, void_report: 'pending', void_report_at: null, void_report_reason: null })
        .where('merchant_id', '=', merchantId)
        .where('number', '=', number)
        .execute();
    },
    async uploadAccepted(merchantId, numbers, at) {
      if (numbers.length === 0) return [];
      const rows = dialect === 'postgres' ? (await noteAcceptedVoidsOnPostgres(merchantId, numbers, at).execute(db)).rows : await db
        .updateTable('invoice_states')
        .set({ uploaded_at: at })
        .where('merchant_id', '=', merchantId)
        .where('number', 'in', [...numbers])
        .where('status', '=', 'voided')
        .where('uploaded_at', 'is', null)
        .returning('number')
        .execute();
      const noted = rows.map((r) => r.number);
      if (noted.length > 0) {
        await db
          .updateTable('outbox')
          .set({ available_at: at })
          .where('merchant_id', '=', merchantId)
          .where('topic', '=', 'invoice.void')
          .where('subject', 'in', noted)
          .where('done_at', 'is', null)
          .execute();
      }
      return noted;
    },
    async awaitUpload(merchantId, number) {
      await db
        .updateTable('invoice_states')
        .set({ uploaded_at: null, void_report: 'pending', void_report_at: null, void_report_reason: null })
        .where('merchant_id', '=', merchantId)
        .where('number', '=', number)
        .where('status', '=', 'voided')
        .execute();
    },
    async settle(merchantId, number, report) {
      await db
        .updateTable('invoice_states')
        .set({ void_report: report.state, void_report_at: report.at, void_report_reason: report.reason })
        .where('merchant_id', '=', merchantId)
        .where('number', '=', number)
        .where('status', '=', 'voided')
        .execute();
    },
    async open(merchantId) {
      // The literal states match the partial index of open voids (010-void-report).
      const { rows } = await sql<{ void_report: string; n: number | string }>`
        select void_report, count(*) as n from invoice_states
        where merchant_id = ${merchantId} and void_report in ('pending', 'refused') group by void_report`.execute(db);
      const count = (state: string) => Number(rows.find((r) => r.void_report === state)?.n ?? 0);
      return { pending: count('pending'), refused: count('refused') };
    },
  };
}

function numberBlocks(db: Db, dialect: Dialect): UploadRepositories['numberBlocks'] {
  const toRecord = (r: Database['number_blocks']): NumberBlockRecord => ({
    merchantId: r.merchant_id, blockId: r.block_id, year: Number(r.year), first: Number(r.first_seq), last: Number(r.last_seq), next: Number(r.next_seq),
    source: r.source as NumberBlockRecord['source'], grantedAt: r.granted_at,
  });
  return {
    async open(merchantId, year) {
      const { rows } = await openBlocks.execute(db, dialect, { merchantId, year });
      return rows.map((r) => ({ blockId: r.block_id, next: Number(r.next_seq), last: Number(r.last_seq) }));
    },
    async insert(b) {
      await db
        .insertInto('number_blocks')
        .values({ merchant_id: b.merchantId, block_id: b.blockId, year: b.year, first_seq: b.first, last_seq: b.last, next_seq: b.next, source: b.source, granted_at: b.grantedAt })
        .execute();
    },
    async overlaps(merchantId, year, first, last) {
      const row = await db
        .selectFrom('number_blocks')
        .select('block_id')
        .where('merchant_id', '=', merchantId)
        .where('year', '=', year)
        .where('first_seq', '<=', last)
        .where('last_seq', '>=', first)
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
    async reserve(merchantId, year) {
      const row = await db
        .selectFrom('number_blocks')
        .select([sql<number | string | null>`sum(last_seq - next_seq + 1)`.as('remaining'), sql<number | string>`count(*)`.as('blocks')])
        .where('merchant_id', '=', merchantId)
        .where('year', '=', year)
        .where(sql.ref('next_seq'), '<=', sql.ref('last_seq'))
        .executeTakeFirstOrThrow();
      return { remaining: Number(row.remaining ?? 0), blocks: Number(row.blocks) };
    },
    async lowReserves(year, below) {
      const rows = await db
        .selectFrom('merchants')
        .leftJoin('number_blocks as b', (join) => join.onRef('b.merchant_id', '=', 'merchants.id').on('b.year', '=', year).on(sql.ref('b.next_seq'), '<=', sql.ref('b.last_seq')))
        .select('merchants.id')
        .groupBy('merchants.id')
        .having(sql<number>`coalesce(sum(b.last_seq - b.next_seq + 1), 0)`, '<', below)
        .execute();
      return rows.map((r) => r.id);
    },
    async list(merchantId, year) {
      return (await db.selectFrom('number_blocks').selectAll().where('merchant_id', '=', merchantId).where('year', '=', year).orderBy('first_seq').execute()).map(toRecord);
    },
    async requests(merchantId) {
      const rows = await db.selectFrom('number_block_requests').select(['request_id', 'year', 'size'])
        .where('merchant_id', '=', merchantId).orderBy('requested_at').orderBy('request_id').execute();
      return rows.map((r) => ({ requestId: r.request_id, year: Number(r.year), size: Number(r.size) }));
    },
    async addRequest(merchantId, request, at) {
      await db.insertInto('number_block_requests')
        .values({ merchant_id: merchantId, request_id: request.requestId, year: request.year, size: request.size, requested_at: at }).execute();
    },
    async settleRequest(merchantId, requestId) {
      await db.deleteFrom('number_block_requests').where('merchant_id', '=', merchantId).where('request_id', '=', requestId).execute();
    },
  };
}

function uploads(db: Db, dialect: Dialect): UploadRepositories['uploads'] {
  const toProblem = (r: Database['invoice_uploads']): UploadProblem => ({
    merchantId: r.merchant_id, number: r.number, state: r.state as UploadProblemState, reasonCode: r.reason_code, reason: r.reason,
    localDigest: r.local_digest, heldDigest: r.held_digest, upstreamRecord: r.upstream_record, at: r.at,
  });
  return {
    async enqueue(jobs) {
      const inserted = await insertJobs.execute(db, dialect, jobs.map(({ merchantId, number, payload, at }) => ({ merchantId, number, payload, at })));
      const ids = new Map(inserted.map((r) => [r.subject, Number(r.id)]));
      await insertRecords.execute(db, dialect, jobs.map(({ number, merchantId, record }) => ({
        jobId: ids.get(number)!, merchantId, json: record.json, kind: record.kind, preTaxFen: record.preTaxFen.toString(), digest: record.digest,
      })));
    },
    async records(merchantId, jobIds) {
      if (jobIds.length === 0) return [];
      // The JSON's bytes as stored, not decoded into a string: an upload sends them as they are.
      const wire = dialect === 'postgres' ? sql<Uint8Array>`convert_to(record, 'UTF8')` : sql<Uint8Array>`cast(record as blob)`;
      const rows = await db.selectFrom('upload_records').select(['job_id', wire.as('wire'), 'kind', 'pre_tax_fen', 'digest'])
        .where('merchant_id', '=', merchantId).where('job_id', 'in', [...jobIds]).execute();
      return rows.map((r) => ({ jobId: Number(r.job_id), wire: r.wire, kind: r.kind as InvoiceKind, preTaxFen: BigInt(r.pre_tax_fen), digest: r.digest }));
    },
    async invoices(merchantId, numbers) {
      if (numbers.length === 0) return [];
      const rows = await db.selectFrom('invoices').selectAll().where('merchant_id', '=', merchantId).where('number', 'in', [...numbers]).execute();
      return rows.map(rowToInvoice);
    },
    async completeJobs(ids, owner, at) {
      if (ids.length === 0) return [];
      if (dialect === 'postgres') return (await completeJobsOnPostgres(ids, owner, at).execute(db)).rows.map((r) => Number(r.id));
      const rows = await db
        .updateTable('outbox')
        .set({ done_at: at, lease_until: null })
        .where('id', 'in', [...ids])
        .where('lease_owner', '=', owner)
        .where('done_at', 'is', null)
        .returning('id')
        .execute();
      return rows.map((r) => Number(r.id));
    },
    async purgeRecords(after, limit) {
      const window = await db.selectFrom('upload_records').select('job_id').where('job_id', '>', after).orderBy('job_id').limit(limit).execute();
      if (window.length === 0) return { deleted: 0, next: null };
      const first = Number(window[0]!.job_id);
      const last = Number(window.at(-1)!.job_id);
      const done = db.selectFrom('outbox').select('id').where('id', '>=', first).where('id', '<=', last).where('done_at', 'is not', null);
      const result = await db.deleteFrom('upload_records').where('job_id', '>=', first).where('job_id', '<=', last).where('job_id', 'in', done).executeTakeFirst();
      return { deleted: Number(result.numDeletedRows), next: last };
    },
    async releaseJobs(ids, owner, availableAt, counted) {
      if (ids.length === 0) return 0;
      if (dialect === 'postgres') return Number((await releaseJobsOnPostgres(ids, owner, availableAt, counted).execute(db)).numAffectedRows ?? 0);
      const result = await db
        .updateTable('outbox')
        .set({ lease_owner: null, lease_until: null, available_at: availableAt, ...(counted ? {} : { attempts: sql`attempts - 1` }) })
        .where('id', 'in', [...ids])
        .where('lease_owner', '=', owner)
        .where('done_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
    async markUploaded(merchantId, numbers, at) {
      if (numbers.length === 0) return [];
      if (dialect === 'postgres') return (await markUploadedOnPostgres(merchantId, numbers, at).execute(db)).rows.map((r) => r.number);
      const rows = await db
        .updateTable('invoice_states')
        .set({ status: 'uploaded', status_changed_at: at })
        .where('merchant_id', '=', merchantId)
        .where('number', 'in', [...numbers])
        .where('status', '=', 'issued')
        .returning('number')
        .execute();
      return rows.map((r) => r.number);
    },
    async recordProblem(p) {
      const values = {
        state: p.state, reason_code: p.reasonCode, reason: p.reason, local_digest: p.localDigest, held_digest: p.heldDigest, upstream_record: p.upstreamRecord, at: p.at,
      };
      await db
        .insertInto('invoice_uploads')
        .values({ merchant_id: p.merchantId, number: p.number, ...values })
        .onConflict((oc) => oc.columns(['merchant_id', 'number']).doUpdateSet(values))
        .execute();
    },
    async invoiceWithProblem(merchantId, number) {
      const [row] = (await findInvoiceWithProblem.execute(db, dialect, { merchantId, number })).rows;
      if (!row) return undefined;
      const problem = row.problem_state === null ? undefined : toProblem({
        merchant_id: row.merchant_id, number: row.number, state: row.problem_state, reason_code: row.problem_reason_code, reason: row.problem_reason,
        local_digest: row.problem_local_digest!, held_digest: row.problem_held_digest, upstream_record: row.problem_upstream_record, at: row.problem_at!,
      });
      return { invoice: rowToInvoice(row), problem };
    },
    async problem(merchantId, number) {
      const [row] = (await findProblem.execute(db, dialect, { merchantId, number })).rows;
      return row && toProblem(row);
    },
    async problemNumbers(merchantId) {
      const rows = await db.selectFrom('invoice_uploads').select('number').where('merchant_id', '=', merchantId).execute();
      return new Set(rows.map((r) => r.number));
    },
    async countProblems(merchantId) {
      const rows = await db
        .selectFrom('invoice_uploads')
        .select(['state', sql<number | string>`count(*)`.as('n')])
        .where('merchant_id', '=', merchantId)
        .groupBy('state')
        .execute();
      const counts: Record<UploadProblemState, number> = { rejected: 0, quarantined: 0 };
      for (const r of rows) counts[r.state as UploadProblemState] = Number(r.n);
      return counts;
    },
    async oldestPending(merchantId, kind) {
      // The literal topic and `done_at is null` let both databases use the partial index of
      // pending uploads (a bound parameter would not match the index's predicate). A job's creation
      // is its invoice's issue, or the re-upload that reconciliation queued: counted from then.
      const { rows } = await sql<{ created_at: string }>`
        select o.created_at from outbox o
        join invoices i on i.merchant_id = o.merchant_id and i.number = o.subject
        where o.merchant_id = ${merchantId} and o.topic = 'invoice.upload' and o.done_at is null and i.kind = ${kind}
        order by o.id limit 1`.execute(db);
      return rows[0]?.created_at ?? null;
    },
    async backlog(merchantId) {
      const rows = await db
        .selectFrom('usage')
        .select(['period', 'invoice_count', preTaxFenText, 'since'])
        .where('merchant_id', '=', merchantId)
        .where('period', 'in', invoiceKinds.map(backlogPeriod))
        .execute();
      return invoiceKinds.map((kind): BacklogRow => {
        const row = rows.find((r) => r.period === backlogPeriod(kind));
        return row && Number(row.invoice_count) > 0
          ? { kind, count: Number(row.invoice_count), preTaxFen: BigInt(row.pre_tax_fen), oldestAt: row.since }
          : { kind, count: 0, preTaxFen: 0n, oldestAt: null };
      });
    },
    async reduceBacklog(merchantId, kind: InvoiceKind, delta, oldestAt) {
      await db
        .updateTable('usage')
        .set({
          invoice_count: sql`invoice_count - ${delta.count}`,
          pre_tax_fen: sql`pre_tax_fen - ${delta.preTaxFen.toString()}`,
          since: oldestAt,
        })
        .where('merchant_id', '=', merchantId)
        .where('period', '=', backlogPeriod(kind))
        .execute();
    },
  };
}

function upstreamState(db: Db): UploadRepositories['upstreamState'] {
  return {
    async get(merchantId) {
      const r = await db.selectFrom('upstream_state').selectAll().where('merchant_id', '=', merchantId).executeTakeFirst();
      return r && { merchantId, mode: r.mode as UpstreamState['mode'], since: r.since, lastError: r.last_error, lastSuccessAt: r.last_success_at, warnedAt: r.warned_at, alertedAt: r.alerted_at };
    },
    async put(s) {
      const values = { mode: s.mode, since: s.since, last_error: s.lastError, last_success_at: s.lastSuccessAt, warned_at: s.warnedAt, alerted_at: s.alertedAt };
      await db
        .insertInto('upstream_state')
        .values({ merchant_id: s.merchantId, ...values })
        .onConflict((oc) => oc.column('merchant_id').doUpdateSet(values))
        .execute();
      await db.updateTable('merchants').set({ offline_since: s.mode === 'contingency' ? s.since : null }).where('id', '=', s.merchantId).execute();
    },
  };
}

function terms(db: Db): UploadRepositories['terms'] {
  return {
    async save(merchantId, t) {
      await db
        .updateTable('merchants')
        .set({ contingency_terms: t.contingencyJson, terms_fetched_at: t.fetchedAt, granted_credit_fen: t.grantedCreditFen === null ? null : t.grantedCreditFen.toString() })
        .where('id', '=', merchantId)
        .execute();
    },
  };
}

/**
 * The addresses (ctid) of `table`'s rows with these keys, each found by its own lookup on the primary
 * key (LATERAL … LIMIT 1, which PostgreSQL cannot turn into a join), for an update that then changes
 * them where they lie (a TID scan). Asked as `merchant_id = $1 and number in (…)` or `id in (…) and
 * done_at is null`, the plan was only as good as the planner's guess: with no statistics yet (a new
 * database, a table grown since the last ANALYZE), or for a merchant outside the sampled common
 * values, it guessed few rows and read all the merchant's (or all the pending) ones and filtered,
 * while the merchant's lock was held: `markUploaded` took 24.6 ms and 8,000 buffers on average for a
 * submission in bench:issue, growing with the merchant's invoices. A row another transaction changed
 * meanwhile has a new address, and the update passes over it (PostgreSQL checks its conditions again
 * on the new version), as it would a row whose conditions no longer hold.
 */
function rowAddresses(table: string, key: string, keys: readonly (string | number)[], keyType: 'text' | 'integer', merchantId?: string) {
  const merchant = merchantId === undefined ? sql`` : sql`merchant_id = ${merchantId} and `;
  return sql`array(select r.ctid from unnest(${[...keys]}::${sql.raw(keyType)}[]) as k(key)
    cross join lateral (select ctid from ${sql.table(table)} where ${merchant}${sql.ref(key)} = k.key limit 1) as r)`;
}

/**
 * `markUploaded` on PostgreSQL. Every writer of invoice states holds the merchant's lock, as the
 * caller does, so no row moves between the lookups and the update; the merchant is named in the update
 * all the same, so that no address could reach another merchant's row and a table sharded by merchant
 * (docs/deploy.md) sends the update to one shard.
 */
export function markUploadedOnPostgres(merchantId: string, numbers: readonly string[], at: string) {
  return sql<{ number: string }>`update invoice_states set status = 'uploaded', status_changed_at = ${at}
    where ${merchantStates(merchantId, numbers)} and status = 'issued' returning number`;
}

/** `uploadAccepted`'s note on the invoice states on PostgreSQL, as `markUploadedOnPostgres`. */
export function noteAcceptedVoidsOnPostgres(merchantId: string, numbers: readonly string[], at: string) {
  return sql<{ number: string }>`update invoice_states set uploaded_at = ${at}
    where ${merchantStates(merchantId, numbers)} and status = 'voided' and uploaded_at is null returning number`;
}

const merchantStates = (merchantId: string, numbers: readonly string[]) =>
  sql`ctid = any(${rowAddresses('invoice_states', 'number', numbers, 'text', merchantId)}) and merchant_id = ${merchantId}`;

/** The jobs among `ids` that `owner` still holds: a job whose lease another process took meanwhile is passed over. */
const heldJobs = (ids: readonly number[], owner: string) =>
  sql`ctid = any(${rowAddresses('outbox', 'id', ids, 'integer')}) and lease_owner = ${owner} and done_at is null`;

/** `completeJobs` on PostgreSQL. */
export function completeJobsOnPostgres(ids: readonly number[], owner: string, at: string) {
  return sql<{ id: number | string }>`update outbox set done_at = ${at}, lease_until = null where ${heldJobs(ids, owner)} returning id`;
}

/** `releaseJobs` on PostgreSQL: after a failed submission, under the merchant's lock, with a backlog pending. */
export function releaseJobsOnPostgres(ids: readonly number[], owner: string, availableAt: string, counted: boolean) {
  const attempts = counted ? sql`` : sql`, attempts = attempts - 1`;
  return sql`update outbox set lease_owner = null, lease_until = null, available_at = ${availableAt}${attempts} where ${heldJobs(ids, owner)}`;
}
