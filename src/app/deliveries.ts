// 推送 (R11): webhooks to the merchant's systems and email to the buyer, driven by the outbox.
//
// Issuing stays as it is: a fan-out pass (fanOut) follows each merchant's invoice chain with a
// cursor and, in ONE transaction per batch, moves the cursor and creates the deliveries of the new
// invoices together with their outbox rows (and print jobs, see printing.ts). The cursor moves by
// compare-and-set, so two processes can never fan out the same invoice twice, and a crash rolls the
// whole batch back. Each delivery is then attempted by the outbox runner under a lease; the attempt
// and the delivery's new state are written together with the outbox row's completion or release,
// so nothing is lost, and an attempt cut short by a crash is logged as such before it is repeated
// under the same delivery id (receivers deduplicate by it).
import { randomUUID } from 'node:crypto';
import { authorize, type Caller } from '../domain/access.js';
import {
  delivered, failedAttempt, isEmailAddress, redeliver as reopen, webhookEvents, defaultRetryPolicy,
  type Delivery, type DeliveryAttempt, type RetryPolicy,
} from '../domain/delivery.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { INVOICE_NUMBER_DIGITS } from '../domain/reasons.js';
import type { Invoice } from '../domain/invoice.js';
import { formatYuan } from '../domain/money.js';
import { isInvoiceNumber } from '../domain/numbering.js';
import { newPrintJob } from '../domain/print-job.js';
import { invoiceChainScope } from '../domain/audit-chain.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { invoiceMail, mailDomain, type Mailer } from '../documents/email.js';
import { newWebhookSecret, postWebhook, webhookUrlProblem, type AttemptResult } from '../documents/webhooks.js';
import { raiseAlert } from './alerts.js';
import { recordAudit } from './audit.js';
import type { DeliveryQuery, DeliverySettings, PrintingPorts, WebhookEndpointRecord } from './delivery-ports.js';
import type { OutboxHandler } from './outbox-runner.js';
import type { OutboxJob, Ports, Repositories } from './ports.js';

export const WEBHOOK_TOPIC = 'delivery.webhook';
export const EMAIL_TOPIC = 'delivery.email';
export const PRINT_TOPIC = 'print.job';
const EMAIL_EVENT = 'invoice.email';

export interface DeliveryDeps {
  /** The invoice's PDF (src/documents/pdf.ts, possibly cached). */
  renderPdf(invoice: Invoice): Promise<Buffer>;
  /** Absent when FAPIAO_SMTP_URL is not set. */
  mailer?: Mailer;
  mailFrom?: string;
  retry?: RetryPolicy;
  webhookTimeoutMs?: number;
}

// ── settings and endpoints ────────────────────────────────────────────────────────────────────

/** The merchant's settings row, made on first use with the cursor at the current chain head. */
export async function ensureSettings(tx: Repositories, merchantId: string, at: string): Promise<DeliverySettings> {
  const existing = await tx.deliverySettings.get(merchantId);
  if (existing) return existing;
  // Deliveries start with the next invoice: history is not replayed to a new receiver.
  const [head] = await tx.chain.heads([invoiceChainScope(merchantId)]);
  const settings = { merchantId, emailBuyer: false, fanoutIndex: head!.index, updatedAt: at };
  await tx.deliverySettings.upsert(settings);
  return settings;
}

export async function getDeliverySettings(ports: Ports, caller: Caller): Promise<DeliverySettings> {
  authorize(caller, 'invoice.read');
  return (await ports.store.read.deliverySettings.get(caller.merchantId)) ?? { merchantId: caller.merchantId, emailBuyer: false, fanoutIndex: 0, updatedAt: '' };
}

export async function setDeliverySettings(ports: Ports & PrintingPorts, caller: Caller, change: { emailBuyer: boolean }): Promise<DeliverySettings> {
  authorize(caller, 'delivery.manage');
  if (change.emailBuyer && ports.emailEnabled === false) throw new Fault(faults.EMAIL_NOT_CONFIGURED);
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const current = await ensureSettings(tx, caller.merchantId, at);
    const next = { ...current, emailBuyer: change.emailBuyer, updatedAt: at };
    await tx.deliverySettings.upsert(next);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'delivery.settings', subject: caller.merchantId, detail: { emailBuyer: change.emailBuyer } });
    return next;
  });
}

export interface EndpointInput {
  url: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
}

function checkEndpoint(input: EndpointInput): { url: string; events: string[] } {
  const problem = webhookUrlProblem(input.url);
  if (problem) throw new Fault(faults.WEBHOOK_URL_INVALID, { reason: problem }, [{ field: 'url', issue: problem.en }]);
  const events = [...new Set(input.events ?? ['invoice.issued'])];
  for (const event of events) {
    if (!(webhookEvents as readonly string[]).includes(event)) throw new Fault(faults.WEBHOOK_EVENT_UNKNOWN, { event }, [{ field: 'events', issue: event }]);
  }
  return { url: input.url, events };
}

export async function createWebhookEndpoint(ports: Ports, caller: Caller, input: EndpointInput): Promise<WebhookEndpointRecord> {
  authorize(caller, 'delivery.manage');
  const { url, events } = checkEndpoint(input);
  const at = shanghaiTimestamp(ports.clock.now());
  const endpoint: WebhookEndpointRecord = {
    id: `whe_${randomUUID().replaceAll('-', '').slice(0, 16)}`, merchantId: caller.merchantId, url, secret: newWebhookSecret(), events,
    enabled: input.enabled ?? true, description: (input.description ?? '').slice(0, 200), createdAt: at,
  };
  return ports.store.write(async (tx) => {
    if ((await tx.webhookEndpoints.list(caller.merchantId)).some((e) => e.url === url)) {
      throw urlTaken();
    }
    await ensureSettings(tx, caller.merchantId, at);
    await tx.webhookEndpoints.insert(endpoint);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'webhook.created', subject: endpoint.id, detail: { url, events } });
    return endpoint;
  });
}

export async function listWebhookEndpoints(ports: Ports, caller: Caller): Promise<WebhookEndpointRecord[]> {
  authorize(caller, 'delivery.manage');
  return ports.store.read.webhookEndpoints.list(caller.merchantId);
}

export async function updateWebhookEndpoint(ports: Ports, caller: Caller, id: string, change: Partial<EndpointInput>): Promise<WebhookEndpointRecord> {
  authorize(caller, 'delivery.manage');
  return ports.store.write(async (tx) => {
    const current = await tx.webhookEndpoints.get(caller.merchantId, id);
    if (!current) throw new Fault(faults.WEBHOOK_ENDPOINT_NOT_FOUND, { endpoint: id });
    const { url, events } = checkEndpoint({ url: change.url ?? current.url, events: change.events ?? current.events });
    if (url !== current.url && (await tx.webhookEndpoints.list(caller.merchantId)).some((e) => e.url === url)) {
      throw urlTaken();
    }
    const next = { ...current, url, events, enabled: change.enabled ?? current.enabled, description: (change.description ?? current.description).slice(0, 200) };
    await tx.webhookEndpoints.update(next);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'webhook.changed', subject: id, detail: { url, events, enabled: next.enabled } });
    return next;
  });
}

export async function deleteWebhookEndpoint(ports: Ports, caller: Caller, id: string): Promise<void> {
  authorize(caller, 'delivery.manage');
  await ports.store.write(async (tx) => {
    if (!(await tx.webhookEndpoints.delete(caller.merchantId, id))) throw new Fault(faults.WEBHOOK_ENDPOINT_NOT_FOUND, { endpoint: id });
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'webhook.deleted', subject: id });
  });
}

/** A `webhook.test` delivery to one endpoint, to check the receiver and its signature check. */
export async function sendTestWebhook(ports: Ports, caller: Caller, id: string): Promise<Delivery> {
  authorize(caller, 'delivery.manage');
  const now = ports.clock.now();
  return ports.store.write(async (tx) => {
    const endpoint = await tx.webhookEndpoints.get(caller.merchantId, id);
    if (!endpoint) throw new Fault(faults.WEBHOOK_ENDPOINT_NOT_FOUND, { endpoint: id });
    const delivery = webhookDelivery(endpoint, 'webhook.test', `test-${randomUUID().slice(0, 8)}`, {}, now);
    await insertDelivery(tx, delivery);
    return delivery;
  });
}

// ── deliveries: list, look at, redeliver, email on request ────────────────────────────────────

export async function listDeliveries(ports: Ports, caller: Caller, query: DeliveryQuery): Promise<Delivery[]> {
  authorize(caller, 'invoice.read');
  return ports.store.read.deliveries.list(caller.merchantId, query);
}

export async function getDelivery(ports: Ports, caller: Caller, id: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] }> {
  authorize(caller, 'invoice.read');
  const delivery = await ports.store.read.deliveries.get(caller.merchantId, id);
  if (!delivery) throw new Fault(faults.DELIVERY_NOT_FOUND, { delivery: id });
  return { delivery, attempts: await ports.store.read.deliveries.attempts(caller.merchantId, id) };
}

/** Manual redelivery: the same delivery, same id and body, with a fresh 24-hour window. */
export async function redeliver(ports: Ports, caller: Caller, id: string): Promise<Delivery> {
  authorize(caller, 'invoice.issue');
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const current = await tx.deliveries.get(caller.merchantId, id);
    if (!current) throw new Fault(faults.DELIVERY_NOT_FOUND, { delivery: id });
    if (current.state === 'pending') throw new Fault(faults.DELIVERY_STILL_PENDING, { delivery: id });
    const next = reopen(current, at);
    await tx.deliveries.save(next, { state: current.state, attempts: current.attempts });
    await enqueueAttempts(tx, next, at);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'delivery.redelivered', subject: id });
    return next;
  });
}

/**
 * Sends the invoice's PDF by email, to `to` or the buyer's address. One delivery per invoice and
 * address: asking again re-sends that delivery (same id) once the earlier one has ended.
 */
export async function emailInvoice(ports: Ports & PrintingPorts, caller: Caller, number: string, to: string | undefined): Promise<Delivery> {
  authorize(caller, 'invoice.issue');
  if (ports.emailEnabled === false) throw new Fault(faults.EMAIL_NOT_CONFIGURED);
  if (!isInvoiceNumber(number)) throw new Fault(faults.QUERY_INVALID, { field: 'number', reason: INVOICE_NUMBER_DIGITS });
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const invoice = await tx.invoices.get(caller.merchantId, number);
    if (!invoice) throw new Fault(faults.INVOICE_NOT_FOUND, { number });
    const address = to ?? invoice.buyer.email;
    if (!address) throw new Fault(faults.BUYER_EMAIL_MISSING, { number });
    if (!isEmailAddress(address)) throw new Fault(faults.EMAIL_ADDRESS_INVALID, { address: address.slice(0, 80) }, [{ field: 'to', issue: 'not an email address' }]);
    const earlier = (await tx.deliveries.list(caller.merchantId, { channel: 'email', subject: number, limit: 100 })).find((d) => d.recipient === address);
    if (earlier?.state === 'pending') return earlier;
    if (earlier) {
      const next = reopen(earlier, at);
      await tx.deliveries.save(next, { state: earlier.state, attempts: earlier.attempts });
      await enqueueAttempts(tx, next, at);
      return next;
    }
    const delivery = emailDelivery(invoice, address, at);
    await insertDelivery(tx, delivery);
    return delivery;
  });
}

function webhookDelivery(endpoint: WebhookEndpointRecord, event: string, subject: string, data: object, now: Date): Delivery {
  const id = `dlv_${randomUUID().replaceAll('-', '')}`;
  const at = shanghaiTimestamp(now);
  const payload = JSON.stringify({ id, type: event, created_at: at, data });
  return {
    id, merchantId: endpoint.merchantId, channel: 'webhook', endpointId: endpoint.id, recipient: endpoint.url, event, subject, payload, state: 'pending',
    attempts: 0, windowStartedAt: at, nextAttemptAt: at, lastError: null, createdAt: at, deliveredAt: null, redeliveries: 0,
  };
}

function emailDelivery(invoice: Invoice, address: string, at: string): Delivery {
  return {
    id: `dlv_${randomUUID().replaceAll('-', '')}`, merchantId: invoice.merchantId, channel: 'email', endpointId: null, recipient: address,
    event: EMAIL_EVENT, subject: invoice.number, payload: '', state: 'pending', attempts: 0, windowStartedAt: at, nextAttemptAt: at,
    lastError: null, createdAt: at, deliveredAt: null, redeliveries: 0,
  };
}

/** What a webhook says about an invoice: enough to act on, the rest is one GET away. */
function invoiceEventData(invoice: Invoice) {
  return {
    invoice: {
      number: invoice.number, kind: invoice.kind, status: invoice.status, issued_at: invoice.issuedAt,
      buyer: { name: invoice.buyer.name, tax_id: invoice.buyer.taxId },
      total_amount: formatYuan(invoice.totalAmount), total_tax: formatYuan(invoice.totalTax), total_with_tax: formatYuan(invoice.totalWithTax),
      digest: invoice.digest, pdf: `/api/v1/invoices/${invoice.number}/pdf`,
    },
  };
}

async function insertDelivery(tx: Repositories, delivery: Delivery): Promise<void> {
  await tx.deliveries.insert(delivery);
  await enqueueAttempts(tx, delivery, delivery.createdAt);
}

/** One outbox row per window of attempts; it remembers how many attempts came before it. */
async function enqueueAttempts(tx: Repositories, delivery: Delivery, at: string): Promise<void> {
  await tx.outbox.enqueue({
    merchantId: delivery.merchantId, topic: delivery.channel === 'webhook' ? WEBHOOK_TOPIC : EMAIL_TOPIC, subject: delivery.id,
    payload: JSON.stringify({ attemptsBefore: delivery.attempts }), at,
  });
}

// ── fan-out: deliveries for newly issued invoices ─────────────────────────────────────────────

const FANOUT_BATCH = 100;

/**
 * One pass over every merchant whose chain has grown past its cursor; returns how many invoices
 * were fanned out. With `onError`, a merchant whose batch fails is reported and skipped, so one
 * merchant's trouble never holds up the others' deliveries; without it, the error is thrown.
 */
export async function fanOut(ports: Ports, onError?: (merchantId: string, error: unknown) => void): Promise<number> {
  let total = 0;
  for (const settings of await ports.store.read.deliverySettings.behind()) {
    try {
      total += await fanOutMerchant(ports, settings);
    } catch (error) {
      if (!onError) throw error;
      onError(settings.merchantId, error);
    }
  }
  return total;
}

async function fanOutMerchant(ports: Ports, settings: DeliverySettings): Promise<number> {
  let total = 0;
  for (;;) {
    const fresh = await ports.store.read.invoices.chainPage(settings.merchantId, settings.fanoutIndex, FANOUT_BATCH);
    if (fresh.length === 0) return total;
    const moved = await fanOutBatch(ports, settings, fresh);
    if (!moved) return total; // another process took this batch; it carries on from there
    total += fresh.length;
    settings.fanoutIndex = fresh.at(-1)!.chainIndex;
    if (fresh.length < FANOUT_BATCH) return total;
  }
}

async function fanOutBatch(ports: Ports, settings: DeliverySettings, invoices: Invoice[]): Promise<boolean> {
  const now = ports.clock.now();
  const at = shanghaiTimestamp(now);
  return ports.store.write(async (tx) => {
    const last = invoices.at(-1)!.chainIndex;
    if (!(await tx.deliverySettings.advance(settings.merchantId, settings.fanoutIndex, last, at))) return false;
    const current = (await tx.deliverySettings.get(settings.merchantId))!;
    // One delivery per URL (the unique index on deliveries would otherwise fail the whole batch).
    const endpoints = (await tx.webhookEndpoints.list(settings.merchantId))
      .filter((e) => e.enabled && e.events.includes('invoice.issued'))
      .filter((e, i, all) => all.findIndex((other) => other.url === e.url) === i);
    const printer = await tx.printers.findDefault(settings.merchantId);
    for (const invoice of invoices) {
      for (const endpoint of endpoints) await insertDelivery(tx, webhookDelivery(endpoint, 'invoice.issued', invoice.number, invoiceEventData(invoice), now));
      if (current.emailBuyer && invoice.buyer.email && isEmailAddress(invoice.buyer.email)) {
        // A clerk may have emailed it by hand in the second before the fan-out came by.
        const sent = await tx.deliveries.list(settings.merchantId, { channel: 'email', subject: invoice.number, limit: 100 });
        if (!sent.some((d) => d.recipient === invoice.buyer.email)) await insertDelivery(tx, emailDelivery(invoice, invoice.buyer.email, at));
      }
      if (printer) {
        const job = newPrintJob({ id: `pj_${randomUUID().replaceAll('-', '')}`, merchantId: invoice.merchantId, invoiceNumber: invoice.number, printerId: printer.id, requestedBy: 'auto-print', at });
        await tx.printJobs.insert(job);
        await tx.outbox.enqueue({ merchantId: job.merchantId, topic: PRINT_TOPIC, subject: job.id, payload: '{}', at });
      }
    }
    return true;
  });
}

// ── attempts: the outbox handlers ─────────────────────────────────────────────────────────────

export function webhookHandler(ports: Ports, deps: DeliveryDeps): OutboxHandler {
  return {
    topic: WEBHOOK_TOPIC,
    handle: (jobs, lease) =>
      attemptAll(ports, deps, jobs, lease.owner, async (delivery) => {
        const endpoint = delivery.endpointId ? await ports.store.read.webhookEndpoints.get(delivery.merchantId, delivery.endpointId) : undefined;
        if (!endpoint) return { final: 'the webhook endpoint was removed' };
        if (!endpoint.enabled) return { final: 'the webhook endpoint is disabled' };
        return postWebhook({ url: delivery.recipient, secret: endpoint.secret, deliveryId: delivery.id, event: delivery.event, body: delivery.payload }, ports.clock.now(), deps.webhookTimeoutMs);
      }),
  };
}

export function emailHandler(ports: Ports, deps: DeliveryDeps): OutboxHandler {
  return {
    topic: EMAIL_TOPIC,
    handle: (jobs, lease) =>
      attemptAll(ports, deps, jobs, lease.owner, async (delivery) => {
        if (!deps.mailer || !deps.mailFrom) return { ok: false, statusCode: null, durationMs: 0, error: `${faults.EMAIL_NOT_CONFIGURED.code}: FAPIAO_SMTP_URL is not set` };
        const invoice = await ports.store.read.invoices.get(delivery.merchantId, delivery.subject);
        if (!invoice) return { final: `invoice ${delivery.subject} not found` };
        const pdf = await deps.renderPdf(invoice);
        return deps.mailer.send(invoiceMail(invoice, pdf, delivery.recipient, delivery.id, mailDomain(deps.mailFrom)));
      }),
  };
}

type Outcome = AttemptResult | { final: string };

async function attemptAll(ports: Ports, deps: DeliveryDeps, jobs: OutboxJob[], owner: string, attempt: (d: Delivery) => Promise<Outcome>) {
  await Promise.all(jobs.map((job) => attemptOne(ports, deps, job, owner, attempt)));
  return {}; // every job is completed or released inside its own transaction
}

async function attemptOne(ports: Ports, deps: DeliveryDeps, job: OutboxJob, owner: string, attempt: (d: Delivery) => Promise<Outcome>): Promise<void> {
  const delivery = await ports.store.read.deliveries.get(job.merchantId, job.subject);
  if (!delivery || delivery.state !== 'pending') {
    await ports.store.write((tx) => tx.outbox.complete(job.id, owner, shanghaiTimestamp(ports.clock.now())));
    return;
  }
  const outcome = await attempt(delivery).catch((error: unknown): Outcome => ({ ok: false, statusCode: null, durationMs: 0, error: (error as Error).message.slice(0, 200) }));
  const now = ports.clock.now();
  const at = shanghaiTimestamp(now);
  // Claims of this row before this one that left no attempt behind: a process died mid-attempt.
  const before = Number((JSON.parse(job.payload || '{}') as { attemptsBefore?: number }).attemptsBefore ?? 0);
  const interrupted = Math.max(0, job.attempts - 1 - (delivery.attempts - before));
  await ports.store.write(async (tx) => {
    let current = delivery;
    for (let i = 0; i < interrupted; i++) {
      await tx.deliveries.appendAttempt({ deliveryId: delivery.id, merchantId: delivery.merchantId, at, outcome: 'failed', statusCode: null, durationMs: 0, error: 'interrupted: the process making this attempt stopped before recording its outcome; sent again under the same delivery id' });
    }
    current = { ...current, attempts: current.attempts + interrupted };
    let next: Delivery;
    if ('final' in outcome) next = { ...current, state: 'failed', attempts: current.attempts + 1, lastError: outcome.final };
    else if (outcome.ok) next = delivered(current, at);
    else next = failedAttempt(current, outcome.error ?? 'failed', now, deps.retry ?? defaultRetryPolicy);
    if (!(await tx.deliveries.save(next, { state: 'pending', attempts: delivery.attempts }))) return; // moved on meanwhile
    await tx.deliveries.appendAttempt({
      deliveryId: delivery.id, merchantId: delivery.merchantId, at, outcome: next.state === 'delivered' ? 'delivered' : 'failed',
      statusCode: 'final' in outcome ? null : outcome.statusCode, durationMs: 'final' in outcome ? 0 : outcome.durationMs,
      error: 'final' in outcome ? outcome.final : outcome.error,
    });
    if (next.state === 'failed') {
      await raiseAlert(tx, { merchantId: next.merchantId, kind: 'delivery.failed', severity: 'warning', subject: next.id, detail: { channel: next.channel, event: next.event, invoice: next.subject, recipient: next.recipient, attempts: next.attempts, reason: next.lastError }, at });
    }
    if (next.state === 'pending') await tx.outbox.release(job.id, owner, next.nextAttemptAt);
    else await tx.outbox.complete(job.id, owner, at);
  });
}

function urlTaken(): Fault {
  return new Fault(faults.WEBHOOK_URL_INVALID, { reason: bilingual('该地址已登记为接收地址', 'this URL is already registered') }, [{ field: 'url', issue: 'already registered' }]);
}
