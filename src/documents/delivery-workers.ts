// The background side of printing and delivery, started by every server process: the fan-out of
// newly issued invoices (deliveries and auto-print jobs), and one outbox runner each for webhooks,
// email and print jobs. Processes and instances share all of it through the database (the fan-out
// cursor moves by compare-and-set, outbox rows by lease), so any number may run side by side.
import { emailHandler, fanOut, webhookHandler, type DeliveryDeps } from '../app/deliveries.js';
import { Counter, type Registry } from 'prom-client';
import { createOutboxRunner, type RunnerLog, type RunnerMetrics } from '../app/outbox-runner.js';
import type { Ports } from '../app/ports.js';
import { Fault } from '../domain/faults.js';
import type { Invoice } from '../domain/invoice.js';
import { smtpMailer, type MailSettings } from './email.js';
import { printJobHandler } from './print-queue.js';

export interface DeliveryWorkerOptions {
  renderPdf(invoice: Invoice): Promise<Buffer>;
  mail?: MailSettings;
  /** How often the fan-out looks for newly issued invoices. */
  fanOutEveryMs?: number;
  log: RunnerLog;
  /**
   * How long a claimed delivery or print job stays with this process before another may take it
   * over (FAPIAO_DELIVERY_LEASE_MS). Webhook attempts time out at half of it, so an attempt always
   * ends before its lease does.
   */
  leaseMs?: number;
  /** Where fapiao_delivery_jobs_total{topic,outcome,code} is registered. */
  registry?: Registry;
}

function runnerMetrics(registry: Registry): RunnerMetrics {
  const jobs = new Counter({
    name: 'fapiao_delivery_jobs_total',
    help: 'Webhook, email and print jobs handled by outcome (done, retry, handled, error with its fault code)',
    labelNames: ['topic', 'outcome', 'code'],
    registers: [registry],
  });
  return { count: (topic, outcome, n, code) => n > 0 && jobs.inc({ topic, outcome, code: code === undefined ? '' : String(code) }, n) };
}

export function startDeliveryWorkers(ports: Ports, options: DeliveryWorkerOptions): () => Promise<void> {
  const mailer = options.mail ? smtpMailer(options.mail) : undefined;
  const leaseMs = options.leaseMs ?? 60_000;
  const deps: DeliveryDeps = { renderPdf: options.renderPdf, webhookTimeoutMs: Math.min(10_000, leaseMs / 2), ...(mailer && { mailer, mailFrom: options.mail!.from }) };
  const common = { log: options.log, idleMs: 500, backoffMs: 1_000, maxBackoffMs: 60_000, ...(options.registry && { metrics: runnerMetrics(options.registry) }) };
  const runners = [
    createOutboxRunner(ports, webhookHandler(ports, deps), { ...common, batchSize: 20, leaseMs }),
    // Rendering a PDF and talking SMTP take longer than a webhook.
    createOutboxRunner(ports, emailHandler(ports, deps), { ...common, batchSize: 10, leaseMs: leaseMs * 2 }),
    createOutboxRunner(ports, printJobHandler(ports, { renderPdf: options.renderPdf }), { ...common, batchSize: 20, leaseMs }),
  ];
  for (const runner of runners) runner.start();

  const fannedOut = options.registry && new Counter({ name: 'fapiao_delivery_fanout_invoices_total', help: 'Issued invoices whose deliveries and print jobs were created', registers: [options.registry] });
  let running: Promise<void> | undefined;
  let failures = 0;
  let resumeAt = 0;
  // A merchant whose fan-out fails is skipped (the others go on) and logged at most once a minute.
  const reported = new Map<string, number>();
  const reportMerchant = (merchantId: string, error: unknown) => {
    if (Date.now() - (reported.get(merchantId) ?? 0) < 60_000) return;
    reported.set(merchantId, Date.now());
    options.log.warn({ merchantId, err: error, code: error instanceof Fault ? error.code : undefined }, 'delivery fan-out failed for a merchant; will retry');
  };
  const tick = () => {
    if (running || Date.now() < resumeAt) return;
    running = fanOut(ports, reportMerchant)
      .then((count) => {
        if (failures > 0) options.log.info({ after: failures }, 'delivery fan-out: working again');
        failures = 0;
        fannedOut?.inc(count);
        if (count > 0) for (const runner of runners) runner.wake();
      })
      .catch((error: unknown) => {
        failures += 1;
        resumeAt = Date.now() + Math.min(60_000, 1_000 * 2 ** Math.min(failures - 1, 6)); // back off while the store is away
        // Logged when it starts failing and then every 10th time (about every 10 min), with the fault code.
        if (failures === 1 || failures % 10 === 0) options.log.warn({ err: error, code: error instanceof Fault ? error.code : undefined, failures }, 'delivery fan-out failed; will retry');
      })
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, options.fanOutEveryMs ?? 1_000);
  timer.unref();

  return async () => {
    clearInterval(timer);
    await running;
    await Promise.all(runners.map((runner) => runner.stop()));
    mailer?.close();
  };
}
