// Printers and print jobs (R21). A merchant has any number of printers (a CUPS queue or a hot
// folder); each may name a backup that takes its jobs when it fails, and one may be the default
// that prints every issued invoice. Print jobs are rows with a state (src/domain/print-job.ts),
// created with their outbox row in one transaction and worked off by src/documents/print-queue.ts.
import { randomUUID } from 'node:crypto';
import { authorize, type Caller } from '../domain/access.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { INVOICE_NUMBER_DIGITS } from '../domain/reasons.js';
import { isInvoiceNumber } from '../domain/numbering.js';
import { cancel, newPrintJob, printJobStateWords, type PrintJob } from '../domain/print-job.js';
import { checkText } from '../domain/text.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { CUPS_QUEUE_NAME } from '../documents/printers/cups.js';
import { directoryPathProblem } from '../documents/printers/directory.js';
import { printingProblem, type Readiness } from '../documents/printers/driver.js';
import { recordAudit } from './audit.js';
import { ensureSettings, PRINT_TOPIC } from './deliveries.js';
import type { PrinterBackend, PrinterRecord, PrintingPorts, PrintJobQuery } from './delivery-ports.js';
import type { Ports, Repositories } from './ports.js';

export interface PrinterInput {
  name: string;
  backend: PrinterBackend;
  target: string;
  backupPrinterId?: string | null;
  isDefault?: boolean;
}

function checkTarget(ports: Ports & PrintingPorts, backend: PrinterBackend, target: string): string {
  const root = ports.printDirectoryRoot?.replace(/\/+$/, '');
  const problem =
    backend === 'cups'
      ? CUPS_QUEUE_NAME.test(target) ? undefined : bilingual('CUPS 队列名只能包含字母、数字和“.”“-”“_”', 'a CUPS queue name has letters, digits, ".", "-" and "_" only')
      : directoryPathProblem(target) ??
        (root && !target.startsWith(`${root}/`) ? bilingual(`热文件夹必须位于 ${root} 之内（FAPIAO_PRINT_DIR）`, `a hot folder must be inside ${root} (FAPIAO_PRINT_DIR)`) : undefined);
  if (problem) throw new Fault(faults.PRINTER_TARGET_INVALID, { reason: problem }, [{ field: 'target', issue: problem.en }]);
  return target;
}

/** The backup must be another printer of the merchant, and following backups must not loop back. */
async function checkBackup(tx: Repositories, merchantId: string, printerId: string, backupId: string | null): Promise<void> {
  if (backupId === null) return;
  if (backupId === printerId) throw new Fault(faults.PRINTER_BACKUP_INVALID, { reason: bilingual('打印机不能作为自己的备用打印机', 'a printer cannot be its own backup') });
  const seen = new Set([printerId]);
  for (let id: string | null = backupId; id !== null; ) {
    const printer: PrinterRecord | undefined = await tx.printers.get(merchantId, id);
    if (!printer) throw new Fault(faults.PRINTER_BACKUP_INVALID, { reason: bilingual(`本商户没有编号为 ${id} 的打印机`, `no printer ${id} of this merchant`) });
    if (seen.has(id)) throw new Fault(faults.PRINTER_BACKUP_INVALID, { reason: bilingual('备用打印机设置会形成循环', 'the backups would form a loop') });
    seen.add(id);
    id = printer.backupPrinterId;
  }
}

export async function addPrinter(ports: Ports & PrintingPorts, caller: Caller, input: PrinterInput): Promise<PrinterRecord> {
  authorize(caller, 'delivery.manage');
  const at = shanghaiTimestamp(ports.clock.now());
  const printer: PrinterRecord = {
    id: `prn_${randomUUID().replaceAll('-', '').slice(0, 16)}`, merchantId: caller.merchantId, name: checkText(input.name, 'name', 50, true),
    backend: input.backend, target: checkTarget(ports, input.backend, input.target), backupPrinterId: input.backupPrinterId ?? null,
    isDefault: input.isDefault ?? false, health: 'unknown', healthDetail: '', healthAt: null, createdAt: at,
  };
  return ports.store.write(async (tx) => {
    if (await tx.printers.findByName(caller.merchantId, printer.name)) throw new Fault(faults.PRINTER_NAME_TAKEN, { name: printer.name });
    await checkBackup(tx, caller.merchantId, printer.id, printer.backupPrinterId);
    await tx.printers.insert({ ...printer, isDefault: false });
    if (printer.isDefault) {
      await ensureSettings(tx, caller.merchantId, at);
      await tx.printers.setDefault(caller.merchantId, printer.id);
    }
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'printer.added', subject: printer.id, detail: { name: printer.name, backend: printer.backend, target: printer.target } });
    return printer;
  });
}

export async function updatePrinter(ports: Ports & PrintingPorts, caller: Caller, id: string, change: Partial<PrinterInput>): Promise<PrinterRecord> {
  authorize(caller, 'delivery.manage');
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const current = await tx.printers.get(caller.merchantId, id);
    if (!current) throw new Fault(faults.PRINTER_NOT_FOUND, { printer: id });
    const backend = change.backend ?? current.backend;
    const next: PrinterRecord = {
      ...current,
      name: change.name === undefined ? current.name : checkText(change.name, 'name', 50, true),
      backend,
      target: checkTarget(ports, backend, change.target ?? current.target),
      backupPrinterId: change.backupPrinterId === undefined ? current.backupPrinterId : change.backupPrinterId,
      isDefault: change.isDefault ?? current.isDefault,
    };
    if (next.name !== current.name && (await tx.printers.findByName(caller.merchantId, next.name))) throw new Fault(faults.PRINTER_NAME_TAKEN, { name: next.name });
    await checkBackup(tx, caller.merchantId, id, next.backupPrinterId);
    await tx.printers.update({ ...next, isDefault: current.isDefault });
    if (next.isDefault !== current.isDefault) {
      if (next.isDefault) await ensureSettings(tx, caller.merchantId, at);
      await tx.printers.setDefault(caller.merchantId, next.isDefault ? id : null);
    }
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'printer.changed', subject: id, detail: { ...change } });
    return next;
  });
}

export async function removePrinter(ports: Ports, caller: Caller, id: string): Promise<void> {
  authorize(caller, 'delivery.manage');
  await ports.store.write(async (tx) => {
    const current = await tx.printers.get(caller.merchantId, id);
    if (!current) throw new Fault(faults.PRINTER_NOT_FOUND, { printer: id });
    const dependants = await tx.printers.backedUpBy(caller.merchantId, id);
    if (dependants.length > 0) throw new Fault(faults.PRINTER_IN_USE, { printer: current.name, reason: bilingual(`它是 ${dependants.map((p) => p.name).join('、')} 的备用打印机`, `it is the backup of ${dependants.map((p) => p.name).join(', ')}`) });
    const active = await tx.printJobs.countActive(caller.merchantId, id);
    if (active > 0) throw new Fault(faults.PRINTER_IN_USE, { printer: current.name, reason: bilingual(`还有 ${active} 个打印任务在等待或打印中`, `${active} job(s) are still waiting or printing`) });
    await tx.printers.delete(caller.merchantId, id);
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: 'printer.removed', subject: id, detail: { name: current.name } });
  });
}

export async function listPrinters(ports: Ports, caller: Caller): Promise<PrinterRecord[]> {
  authorize(caller, 'invoice.read');
  return ports.store.read.printers.list(caller.merchantId);
}

/** Asks the printer now whether it takes jobs, and records the answer as its health. */
export async function checkPrinter(ports: Ports, caller: Caller, id: string, readiness: (p: PrinterRecord) => Promise<Readiness>): Promise<PrinterRecord> {
  authorize(caller, 'invoice.read');
  const printer = await ports.store.read.printers.get(caller.merchantId, id);
  if (!printer) throw new Fault(faults.PRINTER_NOT_FOUND, { printer: id });
  const answer = await readiness(printer).catch((error: unknown) => ({ ready: false as const, reason: printingProblem(error) }));
  const at = shanghaiTimestamp(ports.clock.now());
  // The health detail is recorded in English, as the printing system reports it (see print-queue.ts).
  const detail = answer.ready ? '' : answer.reason.en;
  await ports.store.write((tx) => tx.printers.setHealth(caller.merchantId, id, answer.ready ? 'ok' : 'failing', detail, at));
  return { ...printer, health: answer.ready ? 'ok' : 'failing', healthDetail: detail, healthAt: at };
}

/** A print of the invoice on the given printer, or on the merchant's default one. */
export async function printInvoice(ports: Ports, caller: Caller, number: string, printerId: string | undefined): Promise<PrintJob> {
  authorize(caller, 'invoice.issue');
  if (!isInvoiceNumber(number)) throw new Fault(faults.QUERY_INVALID, { field: 'number', reason: INVOICE_NUMBER_DIGITS });
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    if (!(await tx.invoices.get(caller.merchantId, number))) throw new Fault(faults.INVOICE_NOT_FOUND, { number });
    const printer = printerId ? await tx.printers.get(caller.merchantId, printerId) : await tx.printers.findDefault(caller.merchantId);
    if (!printer) throw new Fault(faults.PRINTER_NOT_FOUND, { printer: printerId ?? bilingual('（默认打印机）', '(default)') });
    const job = newPrintJob({ id: `pj_${randomUUID().replaceAll('-', '')}`, merchantId: caller.merchantId, invoiceNumber: number, printerId: printer.id, requestedBy: caller.actor, at });
    await tx.printJobs.insert(job);
    await tx.outbox.enqueue({ merchantId: caller.merchantId, topic: PRINT_TOPIC, subject: job.id, payload: '{}', at });
    return job;
  });
}

export async function listPrintJobs(ports: Ports, caller: Caller, query: PrintJobQuery): Promise<PrintJob[]> {
  authorize(caller, 'invoice.read');
  return ports.store.read.printJobs.list(caller.merchantId, query);
}

export async function getPrintJob(ports: Ports, caller: Caller, id: string): Promise<PrintJob> {
  authorize(caller, 'invoice.read');
  const job = await ports.store.read.printJobs.get(caller.merchantId, id);
  if (!job) throw new Fault(faults.PRINT_JOB_NOT_FOUND, { job: id });
  return job;
}

export async function cancelPrintJob(ports: Ports, caller: Caller, id: string): Promise<PrintJob> {
  authorize(caller, 'invoice.issue');
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const job = await tx.printJobs.get(caller.merchantId, id);
    if (!job) throw new Fault(faults.PRINT_JOB_NOT_FOUND, { job: id });
    if (job.state !== 'queued') throw new Fault(faults.PRINT_JOB_NOT_CANCELLABLE, { job: id, state: printJobStateWords[job.state] });
    const next = cancel(job, at);
    await tx.printJobs.save(next, 'queued');
    return next;
  });
}
