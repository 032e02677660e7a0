// The print queue (R21): works off `print.job` outbox rows, one step of a job's life at a time
// (src/domain/print-job.ts). Each state change is committed BEFORE the printer is touched for the
// next step, so after a crash the job's row says how far it got, and the printer is asked what it
// has before anything is sent again:
//   queued    → is the printer ready? no: a failed attempt (retry with backoff, then the backup
//               printer); yes: write "sending", hand the PDF over HELD, write "submitted" with the
//               printer's id, release it.
//   sending   → found after a crash: a held job with our title is adopted (recorded and released);
//               none means the printer never got it, so a new attempt is safe.
//   submitted → printed: done. Held: release. Waiting too long: cancel it there, and only when the
//               printer confirms it was cancelled (not printed) does the job move on. A printer
//               that has lost the job entirely cannot say, so the job stops and asks a person.
// The invoice's PDF stays downloadable at every moment (GET /api/v1/invoices/{number}/pdf), so a
// clerk can always print by hand (手动打印).
import { shanghaiTimestamp } from '../domain/time.js';
import { bilingual, Fault, faults, type Bilingual } from '../domain/faults.js';
import type { Invoice } from '../domain/invoice.js';
import {
  attemptFailed, defaultPrintPolicy, isStuck, printed, startSending, submitted, unconfirmed,
  type PrintJob, type PrintJobState, type PrintPolicy,
} from '../domain/print-job.js';
import { raiseAlert } from '../app/alerts.js';
import type { PrinterRecord } from '../app/delivery-ports.js';
import type { BatchResult, OutboxHandler } from '../app/outbox-runner.js';
import type { OutboxJob, Ports } from '../app/ports.js';
import { printingProblem as describe, type PrinterDriver } from './printers/driver.js';
import { cupsPrinter } from './printers/cups.js';
import { directoryPrinter } from './printers/directory.js';

export { PRINT_TOPIC } from '../app/deliveries.js';
import { PRINT_TOPIC } from '../app/deliveries.js';

export interface PrintDeps {
  renderPdf(invoice: Invoice): Promise<Buffer>;
  driverFor?(printer: PrinterRecord): PrinterDriver;
  policy?: PrintPolicy;
}

export function printerDriver(printer: Pick<PrinterRecord, 'backend' | 'target'>): PrinterDriver {
  return printer.backend === 'cups' ? cupsPrinter(printer.target) : directoryPrinter(printer.target);
}

/** The title a job carries at the printer: how it is found again after a crash. */
export const jobTitle = (job: Pick<PrintJob, 'id'>) => `fapiao-${job.id}`;

type Step = { done: true } | { after: number };

export function printJobHandler(ports: Ports, deps: PrintDeps): OutboxHandler {
  const policy = deps.policy ?? defaultPrintPolicy;
  const driverFor = deps.driverFor ?? printerDriver;
  return {
    topic: PRINT_TOPIC,
    async handle(jobs): Promise<BatchResult> {
      const steps = await Promise.all(jobs.map(async (job) => ({ job, step: await stepJob(ports, deps, driverFor, policy, job) })));
      return {
        done: steps.filter((s) => 'done' in s.step).map((s) => s.job.id),
        retry: steps.flatMap((s) => ('after' in s.step ? [{ id: s.job.id, delayMs: s.step.after }] : [])),
      };
    },
  };
}

async function stepJob(ports: Ports, deps: PrintDeps, driverFor: (p: PrinterRecord) => PrinterDriver, policy: PrintPolicy, outboxJob: OutboxJob): Promise<Step> {
  let job = await ports.store.read.printJobs.get(outboxJob.merchantId, outboxJob.subject);
  if (!job || !['queued', 'sending', 'submitted'].includes(job.state)) return { done: true };

  const save = async (next: PrintJob, expected: PrintJobState): Promise<boolean> => {
    const previous = job!;
    const saved = await ports.store.write(async (tx) => {
      if (!(await tx.printJobs.save(next, expected))) return false;
      // People hear of it when a job had to move or cannot print at all (the alert is committed
      // with the state change, so it exists exactly when the change does).
      if (next.printerId !== previous.printerId) {
        await raiseAlert(tx, { merchantId: next.merchantId, kind: 'print.moved', severity: 'warning', subject: next.id, detail: { invoice: next.invoiceNumber, from: previous.printerId, to: next.printerId, reason: next.lastError }, at: next.updatedAt });
      }
      if (next.state === 'failed') {
        await raiseAlert(tx, { merchantId: next.merchantId, kind: 'print.failed', severity: 'critical', subject: next.id, detail: { invoice: next.invoiceNumber, printer: next.printerId, reason: next.lastError, pdf: `/api/v1/invoices/${next.invoiceNumber}/pdf` }, at: next.updatedAt });
      }
      return true;
    });
    if (saved) job = next;
    return saved;
  };
  const now = () => ports.clock.now();
  const stamp = () => shanghaiTimestamp(now());
  const later = (next: PrintJob): Step => (['printed', 'failed', 'cancelled'].includes(next.state) ? { done: true } : { after: Math.max(0, Date.parse(next.nextAttemptAt) - now().getTime()) });

  const printer = await ports.store.read.printers.get(job.merchantId, job.printerId);
  // A job's last error is recorded in Chinese (it becomes the advice of a failed job); a printer's
  // health detail in English, as the printing system reports it.
  const fail = async (reason: Bilingual): Promise<Step> => {
    const next = attemptFailed(job!, reason.zh, now(), policy, printer?.backupPrinterId ?? null);
    return (await save(next, job!.state)) ? later(next) : { after: policy.pollMs };
  };
  if (!printer) return fail(bilingual('打印机已被删除', 'the printer was removed'));
  const driver = driverFor(printer);
  const health = (ok: boolean, detail?: Bilingual) => ports.store.write((tx) => tx.printers.setHealth(printer.merchantId, printer.id, ok ? 'ok' : 'failing', detail?.en ?? '', stamp()));

  try {
    if (job.state === 'queued') {
      if (Date.parse(job.nextAttemptAt) > now().getTime()) return later(job);
      const readiness = await driver.readiness();
      if (!readiness.ready) {
        await health(false, readiness.reason);
        return fail(new Fault(faults.PRINTER_UNAVAILABLE, { printer: printer.name, reason: readiness.reason }).inBoth());
      }
      const invoice = await ports.store.read.invoices.get(job.merchantId, job.invoiceNumber);
      if (!invoice) return fail(bilingual(`未找到发票 ${job.invoiceNumber}`, `invoice ${job.invoiceNumber} not found`));
      const document = await deps.renderPdf(invoice);
      if (!(await save(startSending(job, stamp()), 'queued'))) return { after: policy.pollMs };
      let externalId: string;
      try {
        externalId = await driver.submitHeld(document, jobTitle(job));
      } catch (error) {
        // Nothing was handed over, or only a held job that never prints: a retry is safe.
        await health(false, describe(error));
        return fail(describe(error));
      }
      if (!(await save(submitted(job, externalId, stamp()), 'sending'))) return { after: policy.pollMs };
      await driver.release(externalId);
      await health(true);
      return { after: policy.pollMs };
    }

    if (job.state === 'sending') {
      // Found mid-send: the process that was sending it is gone (its lease ran out).
      const held = await driver.findHeld(jobTitle(job));
      if (!held) return fail(bilingual('打印机接收任务前被中断，重新发送', 'interrupted before the printer took the job; sending again'));
      if (!(await save(submitted(job, held, stamp()), 'sending'))) return { after: policy.pollMs };
      await driver.release(held);
      return { after: policy.pollMs };
    }

    // submitted
    const state = await driver.state(job.externalId!);
    switch (state) {
      case 'printed':
        await save(printed(job, stamp()), 'submitted');
        await health(true);
        return { done: true };
      case 'held':
        await driver.release(job.externalId!);
        return { after: policy.pollMs };
      case 'cancelled':
        return fail(bilingual('任务在打印机上被取消', 'the job was cancelled at the printer'));
      case 'unknown': {
        const next = unconfirmed(job, '打印机已查不到该任务，无法确认是否已打印；为避免重复打印不再发送，请检查打印机，必要时手动打印', stamp());
        await save(next, 'submitted');
        return { done: true };
      }
      default: {
        if (!isStuck(job, now(), policy)) return { after: policy.pollMs };
        const after = await driver.cancel(job.externalId!);
        if (after === 'printed') {
          await save(printed(job, stamp()), 'submitted');
          return { done: true };
        }
        if (after !== 'cancelled') return { after: policy.pollMs }; // not confirmed yet: ask again
        const seconds = Math.round(policy.stuckAfterMs / 1000);
        await health(false, bilingual(`任务滞留 ${seconds} 秒未打印`, `held a job for ${seconds} s without printing it`));
        return fail(bilingual(`打印机滞留任务 ${seconds} 秒未打印，已在打印机上取消`, `the printer held the job for ${seconds} s without printing it; cancelled there`));
      }
    }
  } catch (error) {
    // The printing system itself failed (CUPS down, a command missing): ask again later; the
    // job's row still says exactly where it stands.
    await health(false, describe(error)).catch(() => {});
    return { after: Math.max(policy.pollMs, policy.baseDelayMs) };
  }
}
