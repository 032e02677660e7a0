// `fapiao printer …`, `fapiao print`, `fapiao print-jobs`, `fapiao webhook …`, `fapiao deliveries`
// and `fapiao export`: the same use cases as the HTTP API, against the store the configuration
// names. Printing and delivery themselves are done by the running server's workers.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { userInfo } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { readConfig } from '../config.js';
import { openStore } from '../store/database.js';
import { systemClock } from '../domain/time.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import type { Caller } from '../domain/access.js';
import type { Invoice } from '../domain/invoice.js';
import type { Ports } from '../app/ports.js';
import { addPrinter, checkPrinter, listPrinters, listPrintJobs, printInvoice } from '../app/printing.js';
import { createWebhookEndpoint, listDeliveries, listWebhookEndpoints } from '../app/deliveries.js';
import { invoicePages, type ExportQuery } from '../app/export-invoices.js';
import { csvStream } from '../documents/export/csv.js';
import { writeXlsx } from '../documents/export/xlsx.js';
import { printerDriver } from '../documents/print-queue.js';
import { deliveryView } from '../http/routes/delivery.js';
import { printJobView } from '../http/routes/printing.js';
import { printJson, reportError } from './output.js';

const caller = (merchantId: string): Caller => ({ merchantId, role: 'owner', actor: `cli:${userInfo().username}` });
const json = () => new Option('--json', 'print JSON');

function withStore(action: (ports: Ports, options: Record<string, any>) => Promise<void>) {
  return async (...args: any[]) => {
    const options = (args.at(-1) as Command).optsWithGlobals();
    try {
      const store = await openStore(readConfig());
      try {
        await action({ store, clock: systemClock }, options);
      } finally {
        await store.close();
      }
    } catch (error) {
      process.exitCode = reportError(error, Boolean(options.json));
    }
  };
}

export function registerDeliveryCommands(program: Command): void {
  const printer = program.command('printer').description('printers (打印机): CUPS queues or hot folders, with a backup');
  printer.command('add').requiredOption('--merchant <id>').requiredOption('--name <name>')
    .addOption(new Option('--backend <backend>').choices(['cups', 'directory']).makeOptionMandatory())
    .requiredOption('--target <queue-or-dir>', 'the CUPS queue name (lpstat -p) or an absolute directory')
    .option('--backup <printer-id>', 'takes the jobs when this printer fails').option('--default', 'print every issued invoice here')
    .addOption(json())
    .action(withStore(async (ports, o) => {
      const p = await addPrinter(ports, caller(o.merchant), { name: o.name, backend: o.backend, target: o.target, backupPrinterId: o.backup ?? null, isDefault: Boolean(o.default) });
      if (o.json) printJson(p);
      else console.log(`printer ${p.id} ${p.name} (${p.backend}: ${p.target})${p.isDefault ? ' — default' : ''}`);
    }));
  printer.command('list').requiredOption('--merchant <id>').option('--check', 'ask each printer now whether it takes jobs').addOption(json())
    .action(withStore(async (ports, o) => {
      let printers = await listPrinters(ports, caller(o.merchant));
      if (o.check) printers = await Promise.all(printers.map((p) => checkPrinter(ports, caller(o.merchant), p.id, (r) => printerDriver(r).readiness())));
      if (o.json) return printJson(printers);
      for (const p of printers) console.log(`${p.id}\t${p.name}\t${p.backend}:${p.target}\t${p.health}${p.healthDetail ? ` (${p.healthDetail})` : ''}${p.backupPrinterId ? `\tbackup ${p.backupPrinterId}` : ''}${p.isDefault ? '\tdefault' : ''}`);
    }));

  program.command('print').description('queue a print of an invoice (the server prints it)')
    .requiredOption('--merchant <id>').requiredOption('--number <number>').option('--printer <id>', 'default: the default printer').addOption(json())
    .action(withStore(async (ports, o) => {
      const job = await printInvoice(ports, caller(o.merchant), o.number, o.printer);
      if (o.json) printJson(printJobView(job));
      else console.log(`print job ${job.id} queued on ${job.printerId}; the PDF for printing by hand: fapiao query --number ${o.number} / GET /api/v1/invoices/${o.number}/pdf`);
    }));

  program.command('print-jobs').description('print jobs and their state').requiredOption('--merchant <id>').option('--number <number>').option('--limit <n>', '', '50').addOption(json())
    .action(withStore(async (ports, o) => {
      const jobs = await listPrintJobs(ports, caller(o.merchant), { invoiceNumber: o.number, limit: Number(o.limit) });
      if (o.json) return printJson(jobs.map(printJobView));
      for (const j of jobs) console.log(`${j.id}\t${j.invoiceNumber}\t${j.state}\t${j.printerId}${j.printerId !== j.originalPrinterId ? ` (moved from ${j.originalPrinterId})` : ''}\t${j.lastError ?? ''}`);
    }));

  const webhook = program.command('webhook').description('webhook endpoints of the merchant\'s systems');
  webhook.command('add').requiredOption('--merchant <id>').requiredOption('--url <url>').option('--event <event...>', 'invoice.issued (default), webhook.test').addOption(json())
    .action(withStore(async (ports, o) => {
      const e = await createWebhookEndpoint(ports, caller(o.merchant), { url: o.url, ...(o.event && { events: o.event }) });
      if (o.json) return printJson({ id: e.id, url: e.url, events: e.events, secret: e.secret });
      console.log(`endpoint ${e.id} → ${e.url}\nsigning secret (shown once): ${e.secret}`);
    }));
  webhook.command('list').requiredOption('--merchant <id>').addOption(json())
    .action(withStore(async (ports, o) => {
      const list = (await listWebhookEndpoints(ports, caller(o.merchant))).map((e) => ({ id: e.id, url: e.url, events: e.events, enabled: e.enabled }));
      if (o.json) return printJson(list);
      for (const e of list) console.log(`${e.id}\t${e.url}\t${e.events.join(',')}\t${e.enabled ? 'enabled' : 'disabled'}`);
    }));

  program.command('deliveries').description('the delivery log (webhooks and email)').requiredOption('--merchant <id>').option('--number <number>')
    .option('--limit <n>', '', '50').addOption(json())
    .action(withStore(async (ports, o) => {
      const list = (await listDeliveries(ports, caller(o.merchant), { subject: o.number, limit: Number(o.limit) })).map(deliveryView);
      if (o.json) return printJson(list);
      for (const d of list) console.log(`${d.id}\t${d.channel}\t${d.subject}\t${d.state}\t${d.attempts} attempt(s)\t${d.recipient}${d.last_error ? `\t${d.last_error}` : ''}`);
    }));

  program.command('export').description('export invoices of a query as CSV or XLSX (财务结算), streamed')
    .requiredOption('--merchant <id>').addOption(new Option('--format <format>').choices(['csv', 'xlsx']).default('csv')).requiredOption('--out <file>')
    .option('--date-from <date>').option('--date-to <date>').option('--buyer-name <text>').option('--buyer-tax-id <id>')
    .option('--min-total <yuan>').option('--max-total <yuan>').option('--status <status>').option('--kind <kind>')
    .addOption(json())
    .action(withStore(async (ports, o) => {
      const query: ExportQuery = Object.fromEntries(
        ['date_from', 'date_to', 'buyer_name', 'buyer_tax_id', 'min_total', 'max_total', 'status', 'kind']
          .map((k) => [k, o[k.replace(/_(\w)/g, (_m: string, c: string) => c.toUpperCase())]])
          .filter(([, v]) => v !== undefined),
      );
      if (query.status && !['issued', 'uploaded', 'rejected', 'voided', 'reversed'].includes(query.status)) throw new Fault(faults.QUERY_INVALID, {
        field: 'status',
        reason: bilingual('应为 issued（已开具）、uploaded（已上传）、rejected（被拒收）、voided（已作废）或 reversed（已红冲）', 'issued, uploaded, rejected, voided or reversed'),
      });
      if (query.kind && !['normal', 'special'].includes(query.kind)) throw new Fault(faults.QUERY_INVALID, { field: 'kind', reason: bilingual('应为 normal（普通发票）或 special（增值税专用发票）', 'normal or special') });
      let rows = 0;
      const pages = await invoicePages(ports, caller(o.merchant), query);
      const counted = (async function* () {
        for await (const page of pages) {
          rows += page.length;
          if (!o.json && rows % 10_000 < page.length) process.stderr.write(`  ${rows} invoices…\n`);
          yield page as Invoice[];
        }
      })();
      const out = createWriteStream(o.out);
      if (o.format === 'csv') await pipeline(csvStream(counted), out);
      else {
        await writeXlsx(counted, out);
        if (!out.writableFinished) await once(out, 'finish');
      }
      if (o.json) printJson({ file: o.out, format: o.format, invoices: rows });
      else console.log(`${rows} invoices written to ${o.out}`);
    }));
}
