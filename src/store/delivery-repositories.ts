// Repositories of printing and delivery, on SQLite and PostgreSQL alike. State changes are
// compare-and-set (`save(…, expected)`), so two workers that both think they own a job cannot both
// move it: the second one's write changes nothing and it stands down.
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';
import type { DeliveryRepositories, DeliverySettings, PrinterBackend, PrinterHealth, PrinterRecord, WebhookEndpointRecord } from '../app/delivery-ports.js';
import type { PrinterTable, PrintJobTable, WebhookEndpointTable, DeliveryTable, DeliveryAttemptTable, DeliverySettingsTable } from './delivery-schema.js';
import type { PrintJob, PrintJobState } from '../domain/print-job.js';
import type { Delivery, DeliveryAttempt, DeliveryChannel, DeliveryState } from '../domain/delivery.js';

type Db = Kysely<Database>;

export function deliveryRepositories(db: Db, dialect: 'sqlite' | 'postgres'): DeliveryRepositories {
  const locking = dialect === 'postgres' && db.isTransaction;
  return {
    printers: printers(db),
    printJobs: printJobs(db),
    webhookEndpoints: webhookEndpoints(db),
    deliveries: deliveries(db),
    deliverySettings: deliverySettings(db, locking),
  };
}

const toPrinter = (r: PrinterTable): PrinterRecord => ({
  id: r.id, merchantId: r.merchant_id, name: r.name, backend: r.backend as PrinterBackend, target: r.target, backupPrinterId: r.backup_printer_id,
  isDefault: Number(r.is_default) === 1, health: r.health as PrinterHealth, healthDetail: r.health_detail, healthAt: r.health_at, createdAt: r.created_at,
});

const printerRow = (p: PrinterRecord): PrinterTable => ({
  id: p.id, merchant_id: p.merchantId, name: p.name, backend: p.backend, target: p.target, backup_printer_id: p.backupPrinterId,
  is_default: p.isDefault ? 1 : 0, health: p.health, health_detail: p.healthDetail, health_at: p.healthAt, created_at: p.createdAt,
});

function printers(db: Db): DeliveryRepositories['printers'] {
  return {
    async insert(p) {
      await db.insertInto('printers').values(printerRow(p)).execute();
    },
    async get(merchantId, id) {
      const row = await db.selectFrom('printers').selectAll().where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return row && toPrinter(row);
    },
    async findByName(merchantId, name) {
      const row = await db.selectFrom('printers').selectAll().where('merchant_id', '=', merchantId).where('name', '=', name).executeTakeFirst();
      return row && toPrinter(row);
    },
    async list(merchantId) {
      return (await db.selectFrom('printers').selectAll().where('merchant_id', '=', merchantId).orderBy('created_at').orderBy('id').execute()).map(toPrinter);
    },
    async update(p) {
      const { id, merchant_id, created_at, ...changes } = printerRow(p);
      await db.updateTable('printers').set(changes).where('merchant_id', '=', merchant_id).where('id', '=', id).execute();
    },
    async setDefault(merchantId, id) {
      await db.updateTable('printers').set({ is_default: 0 }).where('merchant_id', '=', merchantId).where('is_default', '=', 1).execute();
      if (id !== null) await db.updateTable('printers').set({ is_default: 1 }).where('merchant_id', '=', merchantId).where('id', '=', id).execute();
    },
    async findDefault(merchantId) {
      const row = await db.selectFrom('printers').selectAll().where('merchant_id', '=', merchantId).where('is_default', '=', 1).executeTakeFirst();
      return row && toPrinter(row);
    },
    async setHealth(merchantId, id, health, detail, at) {
      await db.updateTable('printers').set({ health, health_detail: detail, health_at: at }).where('merchant_id', '=', merchantId).where('id', '=', id).execute();
    },
    async delete(merchantId, id) {
      const result = await db.deleteFrom('printers').where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async backedUpBy(merchantId, id) {
      return (await db.selectFrom('printers').selectAll().where('merchant_id', '=', merchantId).where('backup_printer_id', '=', id).execute()).map(toPrinter);
    },
  };
}

const toJob = (r: PrintJobTable): PrintJob => ({
  id: r.id, merchantId: r.merchant_id, invoiceNumber: r.invoice_number, printerId: r.printer_id, originalPrinterId: r.original_printer_id,
  state: r.state as PrintJobState, attempts: Number(r.attempts), totalAttempts: Number(r.total_attempts), externalId: r.external_id, lastError: r.last_error,
  nextAttemptAt: r.next_attempt_at, createdAt: r.created_at, updatedAt: r.updated_at, submittedAt: r.submitted_at, printedAt: r.printed_at,
  movedAt: r.moved_at, requestedBy: r.requested_by,
});

const jobRow = (j: PrintJob): PrintJobTable => ({
  id: j.id, merchant_id: j.merchantId, invoice_number: j.invoiceNumber, printer_id: j.printerId, original_printer_id: j.originalPrinterId,
  state: j.state, attempts: j.attempts, total_attempts: j.totalAttempts, external_id: j.externalId, last_error: j.lastError,
  next_attempt_at: j.nextAttemptAt, created_at: j.createdAt, updated_at: j.updatedAt, submitted_at: j.submittedAt, printed_at: j.printedAt,
  moved_at: j.movedAt, requested_by: j.requestedBy,
});

function printJobs(db: Db): DeliveryRepositories['printJobs'] {
  return {
    async insert(job) {
      await db.insertInto('print_jobs').values(jobRow(job)).execute();
    },
    async get(merchantId, id) {
      const row = await db.selectFrom('print_jobs').selectAll().where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return row && toJob(row);
    },
    async list(merchantId, q) {
      let query = db.selectFrom('print_jobs').selectAll().where('merchant_id', '=', merchantId);
      if (q.invoiceNumber) query = query.where('invoice_number', '=', q.invoiceNumber);
      if (q.printerId) query = query.where((eb) => eb.or([eb('printer_id', '=', q.printerId!), eb('original_printer_id', '=', q.printerId!)]));
      if (q.state) query = query.where('state', '=', q.state);
      if (q.before) {
        const { createdAt, id } = q.before;
        query = query.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
      }
      return (await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute()).map(toJob);
    },
    async save(job, expected) {
      const { id, merchant_id, created_at, ...changes } = jobRow(job);
      const result = await db.updateTable('print_jobs').set(changes).where('merchant_id', '=', merchant_id).where('id', '=', id).where('state', '=', expected).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async countActive(merchantId, printerId) {
      const row = await db
        .selectFrom('print_jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('merchant_id', '=', merchantId)
        .where('printer_id', '=', printerId)
        .where('state', 'in', ['queued', 'sending', 'submitted'])
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

const toEndpoint = (r: WebhookEndpointTable): WebhookEndpointRecord => ({
  id: r.id, merchantId: r.merchant_id, url: r.url, secret: r.secret, events: r.events ? r.events.split(',') : [], enabled: Number(r.enabled) === 1,
  description: r.description, createdAt: r.created_at,
});

function webhookEndpoints(db: Db): DeliveryRepositories['webhookEndpoints'] {
  const row = (e: WebhookEndpointRecord): WebhookEndpointTable => ({
    id: e.id, merchant_id: e.merchantId, url: e.url, secret: e.secret, events: e.events.join(','), enabled: e.enabled ? 1 : 0, description: e.description, created_at: e.createdAt,
  });
  return {
    async insert(e) {
      await db.insertInto('webhook_endpoints').values(row(e)).execute();
    },
    async get(merchantId, id) {
      const r = await db.selectFrom('webhook_endpoints').selectAll().where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return r && toEndpoint(r);
    },
    async list(merchantId) {
      return (await db.selectFrom('webhook_endpoints').selectAll().where('merchant_id', '=', merchantId).orderBy('created_at').orderBy('id').execute()).map(toEndpoint);
    },
    async update(e) {
      const { id, merchant_id, created_at, ...changes } = row(e);
      await db.updateTable('webhook_endpoints').set(changes).where('merchant_id', '=', merchant_id).where('id', '=', id).execute();
    },
    async delete(merchantId, id) {
      const result = await db.deleteFrom('webhook_endpoints').where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}

const toDelivery = (r: DeliveryTable): Delivery => ({
  id: r.id, merchantId: r.merchant_id, channel: r.channel as DeliveryChannel, endpointId: r.endpoint_id, recipient: r.recipient, event: r.event,
  subject: r.subject, payload: r.payload, state: r.state as DeliveryState, attempts: Number(r.attempts), windowStartedAt: r.window_started_at,
  nextAttemptAt: r.next_attempt_at, lastError: r.last_error, createdAt: r.created_at, deliveredAt: r.delivered_at, redeliveries: Number(r.redeliveries),
});

const deliveryRow = (d: Delivery): DeliveryTable => ({
  id: d.id, merchant_id: d.merchantId, channel: d.channel, endpoint_id: d.endpointId, recipient: d.recipient, event: d.event, subject: d.subject,
  payload: d.payload, state: d.state, attempts: d.attempts, window_started_at: d.windowStartedAt, next_attempt_at: d.nextAttemptAt,
  last_error: d.lastError, created_at: d.createdAt, delivered_at: d.deliveredAt, redeliveries: d.redeliveries,
});

const toAttempt = (r: DeliveryAttemptTable & { id: number }): DeliveryAttempt => ({
  id: Number(r.id), deliveryId: r.delivery_id, merchantId: r.merchant_id, at: r.at, outcome: r.outcome as DeliveryAttempt['outcome'],
  statusCode: r.status_code === null ? null : Number(r.status_code), durationMs: Number(r.duration_ms), error: r.error,
});

function deliveries(db: Db): DeliveryRepositories['deliveries'] {
  return {
    async insert(d) {
      await db.insertInto('deliveries').values(deliveryRow(d)).execute();
    },
    async get(merchantId, id) {
      const r = await db.selectFrom('deliveries').selectAll().where('merchant_id', '=', merchantId).where('id', '=', id).executeTakeFirst();
      return r && toDelivery(r);
    },
    async list(merchantId, q) {
      let query = db.selectFrom('deliveries').selectAll().where('merchant_id', '=', merchantId);
      if (q.channel) query = query.where('channel', '=', q.channel);
      if (q.endpointId) query = query.where('endpoint_id', '=', q.endpointId);
      if (q.subject) query = query.where('subject', '=', q.subject);
      if (q.state) query = query.where('state', '=', q.state);
      if (q.before) {
        const { createdAt, id } = q.before;
        query = query.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
      }
      return (await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute()).map(toDelivery);
    },
    async save(d, expected) {
      const { id, merchant_id, created_at, ...changes } = deliveryRow(d);
      const result = await db
        .updateTable('deliveries')
        .set(changes)
        .where('merchant_id', '=', merchant_id)
        .where('id', '=', id)
        .where('state', '=', expected.state)
        .where('attempts', '=', expected.attempts)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async appendAttempt(a) {
      await db
        .insertInto('delivery_attempts')
        .values({ delivery_id: a.deliveryId, merchant_id: a.merchantId, at: a.at, outcome: a.outcome, status_code: a.statusCode, duration_ms: a.durationMs, error: a.error })
        .execute();
    },
    async attempts(merchantId, deliveryId) {
      const rows = await db.selectFrom('delivery_attempts').selectAll().where('merchant_id', '=', merchantId).where('delivery_id', '=', deliveryId).orderBy('id').execute();
      return rows.map((r) => toAttempt(r as DeliveryAttemptTable & { id: number }));
    },
  };
}

const toSettings = (r: DeliverySettingsTable): DeliverySettings => ({
  merchantId: r.merchant_id, emailBuyer: Number(r.email_buyer) === 1, fanoutIndex: Number(r.fanout_index), updatedAt: r.updated_at,
});

function deliverySettings(db: Db, locking: boolean): DeliveryRepositories['deliverySettings'] {
  return {
    async get(merchantId) {
      let query = db.selectFrom('delivery_settings').selectAll().where('merchant_id', '=', merchantId);
      if (locking) query = query.forUpdate();
      const r = await query.executeTakeFirst();
      return r && toSettings(r);
    },
    async upsert(s) {
      await db
        .insertInto('delivery_settings')
        .values({ merchant_id: s.merchantId, email_buyer: s.emailBuyer ? 1 : 0, fanout_index: s.fanoutIndex, updated_at: s.updatedAt })
        .onConflict((oc) => oc.column('merchant_id').doUpdateSet({ email_buyer: s.emailBuyer ? 1 : 0, updated_at: s.updatedAt }))
        .execute();
    },
    async list() {
      return (await db.selectFrom('delivery_settings').selectAll().orderBy('merchant_id').execute()).map(toSettings);
    },
    async behind() {
      const rows = await db
        .selectFrom('delivery_settings')
        // chain_heads.scope is "invoices:<merchant>" (src/domain/audit-chain.ts); its primary key serves the join.
        .innerJoin('chain_heads', (join) => join.on(sql<boolean>`chain_heads.scope = 'invoices:' || delivery_settings.merchant_id`))
        .selectAll('delivery_settings')
        .whereRef('chain_heads.length', '>', 'delivery_settings.fanout_index')
        .orderBy('delivery_settings.merchant_id')
        .execute();
      return rows.map(toSettings);
    },
    async advance(merchantId, from, to, at) {
      const result = await db
        .updateTable('delivery_settings')
        .set({ fanout_index: to, updated_at: at })
        .where('merchant_id', '=', merchantId)
        .where('fanout_index', '=', from)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}
