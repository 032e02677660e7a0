// `fapiao reconcile --date YYYY-MM-DD [--merchant id]`: 对账 of one issue date against the tax
// service (FAPIAO_UPSTREAM_URL, or the sandbox of the running server); exit 1 when there are
// differences. `fapiao reconcile resolve` resolves one difference.
import { hostname, userInfo } from 'node:os';
import { type Command, Option } from 'commander';
import { readConfig } from '../config.js';
import { openStore } from '../store/database.js';
import { shanghaiDate, systemClock } from '../domain/time.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import type { Caller } from '../domain/access.js';
import { checkReconcileDate, reconcile, resolveDifference, type ReconciliationResult } from '../app/reconcile.js';
import { taxServiceClientFor, upstreamSetup } from '../upstream/setup.js';
import { itemView, resultView } from '../http/routes/reconciliations.js';
import { printJson, reportError } from './output.js';

const json = new Option('--json', 'print JSON');
const cliCaller = (merchantId: string): Caller => ({ merchantId, role: 'owner', actor: `cli:${userInfo().username}@${hostname()}` });

export function registerReconcileCommands(program: Command): void {
  const command = program.command('reconcile').description('对账: compare one issue date with the tax service; exit 1 on differences')
    .option('--date <date>', 'the issue date, YYYY-MM-DD (Asia/Shanghai)')
    .option('--merchant <id>', 'one merchant (default: every merchant)')
    .option('--timeout-ms <ms>', 'per call to the tax service', '10000')
    .addOption(json)
    .action(async (o: { date?: string; merchant?: string; timeoutMs: string; json?: boolean }) => {
      try {
        if (!o.date) throw new Fault(faults.RECONCILE_DATE_INVALID, { date: '(missing)' }, [{ field: '--date', issue: 'required' }]);
        checkReconcileDate(o.date, shanghaiDate(systemClock.now())); // refused before anything is opened
        const config = readConfig();
        const store = await openStore(config);
        try {
          const taxService = taxServiceClientFor(upstreamSetup(config), store, systemClock, { timeoutMs: Number(o.timeoutMs) || 10_000 });
          const merchants = o.merchant ? [o.merchant] : (await store.read.merchants.list()).map((m) => m.id);
          if (o.merchant && !(await store.read.merchants.get(o.merchant))) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: o.merchant });
          const results: ReconciliationResult[] = [];
          for (const id of merchants) results.push(await reconcile({ store, clock: systemClock, taxService }, cliCaller(id), o.date));
          const differences = results.reduce((n, r) => n + r.report.differences, 0);
          if (o.json) printJson({ ok: differences === 0, reconciliations: results.map(resultView) });
          else {
            for (const { report, items } of results) {
              console.log(`${report.merchantId} ${report.date}: ${report.localCount} here, ${report.upstreamCount} at the tax service — ${report.matched} matched, ${report.pending} pending upload, ${report.differences} differences (report ${report.id})`);
              for (const i of items) console.log(`  #${i.id} ${i.number}\t${i.difference}\tlocal ${i.localDigest?.slice(0, 12) ?? '—'} (${i.localStatus ?? '—'})\tupstream ${i.upstreamDigest?.slice(0, 12) ?? '—'}`);
            }
            if (differences > 0) console.log('resolve with: fapiao reconcile resolve --merchant <id> --item <#> --action reupload|investigated [--note "…"]');
          }
          process.exitCode = differences === 0 ? 0 : 1;
        } finally {
          await store.close();
        }
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });

  command.command('resolve').description('resolve one difference: upload the invoice again, or mark it investigated with a note')
    .requiredOption('--merchant <id>').requiredOption('--item <n>', 'the difference\'s number (#) in the report')
    .addOption(new Option('--action <action>').choices(['reupload', 'investigated']).makeOptionMandatory())
    .option('--note <text>', 'what was found (required for investigated)')
    .addOption(json)
    .action(async (_o: unknown, sub: Command) => {
      const o = sub.optsWithGlobals() as { merchant: string; item: string; action: 'reupload' | 'investigated'; note?: string; json?: boolean };
      try {
        const item = Number(o.item);
        if (!Number.isInteger(item) || item <= 0) throw new Fault(faults.FIELD_INVALID, { field: '--item', reason: bilingual('应为报告中以 #n 显示的编号', 'the number shown as #n in the report') });
        const store = await openStore(readConfig());
        try {
          const resolved = await resolveDifference({ store, clock: systemClock }, cliCaller(o.merchant), item, { action: o.action, ...(o.note !== undefined && { note: o.note }) });
          if (o.json) printJson(itemView(resolved));
          else console.log(`#${resolved.id} ${resolved.number}: ${resolved.resolution} by ${resolved.resolvedBy}`);
        } finally {
          await store.close();
        }
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });
}
