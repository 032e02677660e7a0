// Credentials, alerts, reconciliation reports and job leases, on both dialects. Every query on
// merchant data is scoped by merchant id.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { AlertRecord, AlertSeverity, ReconciliationDifference, ReconciliationItem, ReconciliationReport, ReconciliationResolution, UpstreamRepositories } from '../app/upstream-ports.js';

type Db = Kysely<Database>;

export function upstreamRepositories(db: Db): UpstreamRepositories {
  return { alerts: alerts(db), upstreamCredentials: credentials(db), reconciliations: reconciliations(db), jobLeases: jobLeases(db), leases: leases(db) };
}

function alerts(db: Db): UpstreamRepositories['alerts'] {
  const toRecord = (r: Database['alerts'] & { id: number }): AlertRecord => ({
    id: Number(r.id), merchantId: r.merchant_id, kind: r.kind, severity: r.severity as AlertSeverity, subject: r.subject,
    detail: JSON.parse(r.detail) as Record<string, unknown>, at: r.at, acknowledgedAt: r.acknowledged_at, acknowledgedBy: r.acknowledged_by,
  });
  return {
    async insert(a) {
      const row = await db
        .insertInto('alerts')
        .values({ merchant_id: a.merchantId, kind: a.kind, severity: a.severity, subject: a.subject, detail: JSON.stringify(a.detail), at: a.at, acknowledged_at: null, acknowledged_by: null })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    },
    async list(merchantId, filter, limit) {
      let q = db.selectFrom('alerts').selectAll().where('merchant_id', '=', merchantId);
      if (filter.beforeId !== undefined) q = q.where('id', '<', filter.beforeId);
      if (filter.kind) q = q.where('kind', '=', filter.kind);
      if (filter.unacknowledged) q = q.where('acknowledged_at', 'is', null);
      return (await q.orderBy('id', 'desc').limit(limit).execute()).map((r) => toRecord(r as Database['alerts'] & { id: number }));
    },
    async acknowledge(merchantId, id, by, at) {
      const result = await db.updateTable('alerts').set({ acknowledged_at: at, acknowledged_by: by }).where('merchant_id', '=', merchantId).where('id', '=', id).where('acknowledged_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}

function credentials(db: Db): UpstreamRepositories['upstreamCredentials'] {
  const get = async (sellerTaxId: string, upstreamUrl: string) => {
    const r = await db.selectFrom('upstream_credentials').selectAll().where('seller_tax_id', '=', sellerTaxId).where('upstream_url', '=', upstreamUrl).executeTakeFirst();
    return r && { sellerTaxId: r.seller_tax_id, upstreamUrl: r.upstream_url, keyId: r.key_id, secret: r.secret, createdAt: r.created_at };
  };
  return {
    get,
    async insertIfAbsent(c) {
      await db
        .insertInto('upstream_credentials')
        .values({ seller_tax_id: c.sellerTaxId, upstream_url: c.upstreamUrl, key_id: c.keyId, secret: c.secret, created_at: c.createdAt })
        .onConflict((oc) => oc.columns(['seller_tax_id', 'upstream_url']).doNothing())
        .execute();
      return (await get(c.sellerTaxId, c.upstreamUrl))!;
    },
    async remove(sellerTaxId, upstreamUrl) {
      await db.deleteFrom('upstream_credentials').where('seller_tax_id', '=', sellerTaxId).where('upstream_url', '=', upstreamUrl).execute();
    },
  };
}

function reconciliations(db: Db): UpstreamRepositories['reconciliations'] {
  const toReport = (r: Database['reconciliations']): ReconciliationReport => ({
    id: r.id, merchantId: r.merchant_id, date: r.date, ranAt: r.ran_at, actor: r.actor,
    localCount: Number(r.local_count), upstreamCount: Number(r.upstream_count), matched: Number(r.matched), pending: Number(r.pending), differences: Number(r.differences),
  });
  const toItem = (r: Database['reconciliation_items'] & { id: number }): ReconciliationItem => ({
    id: Number(r.id), reconciliationId: r.reconciliation_id, number: r.number, difference: r.difference as ReconciliationDifference,
    localDigest: r.local_digest, upstreamDigest: r.upstream_digest, localStatus: r.local_status,
    resolution: r.resolution as ReconciliationResolution | null, resolvedAt: r.resolved_at, resolvedBy: r.resolved_by, note: r.note,
  });
  return {
    async insert(report, items) {
      await db
        .insertInto('reconciliations')
        .values({
          id: report.id, merchant_id: report.merchantId, date: report.date, ran_at: report.ranAt, actor: report.actor,
          local_count: report.localCount, upstream_count: report.upstreamCount, matched: report.matched, pending: report.pending, differences: report.differences,
        })
        .execute();
      // A few hundred rows per statement keeps within both dialects' parameter limits.
      for (let i = 0; i < items.length; i += 200) {
        await db
          .insertInto('reconciliation_items')
          .values(items.slice(i, i + 200).map((item) => ({
            reconciliation_id: report.id, merchant_id: report.merchantId, number: item.number, difference: item.difference,
            local_digest: item.localDigest, upstream_digest: item.upstreamDigest, local_status: item.localStatus,
            resolution: null, resolved_at: null, resolved_by: null, note: null,
          })))
          .execute();
      }
    },
    async get(merchantId, id) {
      const r = await db.selectFrom('reconciliations').selectAll().where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return r && toReport(r);
    },
    async list(merchantId, filter, limit) {
      let q = db.selectFrom('reconciliations').selectAll().where('merchant_id', '=', merchantId);
      if (filter.date) q = q.where('date', '=', filter.date);
      return (await q.orderBy('ran_at', 'desc').orderBy('id').limit(limit).execute()).map(toReport);
    },
    async items(merchantId, reconciliationId) {
      const rows = await db.selectFrom('reconciliation_items').selectAll().where('merchant_id', '=', merchantId).where('reconciliation_id', '=', reconciliationId).orderBy('id').execute();
      return rows.map((r) => toItem(r as Database['reconciliation_items'] & { id: number }));
    },
    async item(merchantId, itemId) {
      const r = await db.selectFrom('reconciliation_items').selectAll().where('merchant_id', '=', merchantId).where('id', '=', itemId).executeTakeFirst();
      return r && toItem(r as Database['reconciliation_items'] & { id: number });
    },
    async resolve(merchantId, itemId, r) {
      const result = await db
        .updateTable('reconciliation_items')
        .set({ resolution: r.resolution, resolved_at: r.at, resolved_by: r.by, note: r.note })
        .where('merchant_id', '=', merchantId)
        .where('id', '=', itemId)
        .where('resolution', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}

function leases(db: Db): UpstreamRepositories['leases'] {
  return {
    async holders(now) {
      const rows = await db
        .selectFrom('outbox')
        .select('lease_owner as owner')
        .where('done_at', 'is', null)
        .where('lease_owner', 'is not', null)
        .where('lease_until', '>=', now)
        .union(db.selectFrom('job_leases').select('owner').where('owner', 'is not', null).where('lease_until', '>=', now))
        .execute();
      return rows.map((r) => r.owner!);
    },
    async expire(owners, now) {
      if (owners.length === 0) return 0;
      const jobs = await db.updateTable('outbox').set({ lease_until: now }).where('lease_owner', 'in', owners).where('done_at', 'is', null).where('lease_until', '>', now).executeTakeFirst();
      const named = await db.updateTable('job_leases').set({ lease_until: now }).where('owner', 'in', owners).where('lease_until', '>', now).executeTakeFirst();
      return Number(jobs.numUpdatedRows) + Number(named.numUpdatedRows);
    },
  };
}

function jobLeases(db: Db): UpstreamRepositories['jobLeases'] {
  return {
    async acquire(name, owner, now, leaseUntil) {
      await db.insertInto('job_leases').values({ name, owner: null, lease_until: null, last_done: null }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const taken = await db
        .updateTable('job_leases')
        .set({ owner, lease_until: leaseUntil })
        .where('name', '=', name)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('owner', '=', owner)]))
        .returning('last_done')
        .executeTakeFirst();
      return taken ? { lastDone: taken.last_done } : false;
    },
    async finish(name, owner, doneKey) {
      await db.updateTable('job_leases').set({ last_done: doneKey, owner: null, lease_until: null }).where('name', '=', name).where('owner', '=', owner).execute();
    },
    async release(name, owner) {
      await db.updateTable('job_leases').set({ owner: null, lease_until: null }).where('name', '=', name).where('owner', '=', owner).execute();
    },
  };
}
