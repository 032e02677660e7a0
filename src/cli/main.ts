// The `fapiao` command: a thin adapter over the same use cases as the HTTP API. It opens the
// store named by FAPIAO_DATA_DIR (or DATABASE_URL) itself, so it works with or without a running server.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import type { z } from 'zod';
import { readConfig } from '../config.js';
import { migrateDatabase, openStore } from '../store/database.js';
import { systemClock } from '../domain/time.js';
import { formatYuan } from '../domain/money.js';
import { decodeUtf8 } from '../domain/text.js';
import { bilingual, Fault, faults, withOriginal, type FaultSpec } from '../domain/faults.js';
import { isRole, ROLE_CHOICES, type Caller, type Role } from '../domain/access.js';
import type { Ports } from '../app/ports.js';
import { addMerchant, setMerchantLimits } from '../app/merchants.js';
import { addUser } from '../app/users.js';
import { createApiKey } from '../app/api-keys.js';
import { issueInvoice } from '../app/issue-invoice.js';
import { getInvoiceWithUpload, listInvoices } from '../app/query-invoices.js';
import { verifyChains } from '../app/verify-chain.js';
import { applyRetention, backUp, dialectOf, readKeyFile, restore } from '../app/backups.js';
import { faultCatalogueMarkdown, faultView, lookUpFault } from '../app/fault-lookup.js';
import { argon2Hasher } from '../security/passwords.js';
import { IssueRequest, InvoiceQuery } from '../http/schemas.js';
import { RequestRejected, zodValidatorCompiler } from '../http/errors.js';
import { invoiceDetailView, invoiceView, merchantView } from '../http/views.js';
import { creditLineView } from '../http/routes/status.js';
import { serve } from '../server.js';
import { creditLineText, printJson, reportError } from './output.js';
import { registerDeliveryCommands } from './delivery.js';
import { registerSimulatorCommands } from './simulator.js';
import { registerReconcileCommands } from './reconcile.js';
import { provisionMerchant, registerNumberCommands } from './numbers.js';
import { registerDocumentCommands } from './documents.js';
import { openSigner } from '../app/signing-keys.js';

const program = new Command('fapiao').description('Fapiao e-invoicing platform (发票)').showHelpAfterError();

/** Runs a command against the store and turns any error into a printed fault and exit code. */
function withStore(action: (ports: Ports, options: Record<string, any>) => Promise<number | void>) {
  return async (...args: any[]) => {
    const command = args.at(-1) as Command;
    const options = command.optsWithGlobals();
    let code = 0;
    try {
      const store = await openStore(readConfig());
      try {
        code = (await action({ store, clock: systemClock }, { ...options, args: command.args })) ?? 0;
      } finally {
        await store.close();
      }
    } catch (error) {
      code = reportError(error, Boolean(options.json));
    }
    process.exitCode = code;
  };
}

const json = new Option('--json', 'print JSON');
const cliCaller = (merchantId: string): Caller => ({ merchantId, role: 'owner', actor: `cli:${userInfo().username}` });

/** Parses a request with the same schema the HTTP API uses, so both refuse the same input the same way. */
function parseWith<T>(schema: { safeParse(data: unknown): unknown }, data: unknown, part: string): T {
  const result = zodValidatorCompiler({ schema: schema as never, method: 'POST', url: 'cli', httpPart: part })(data) as { value?: T; error?: RequestRejected };
  if (result.error) throw result.error.fault;
  return result.value as T;
}

program.command('serve').description('run the HTTP server (npm start)').action(async () => {
  await serve(readConfig());
});

program.command('migrate').description('apply database migrations').addOption(json).action(async (o: { json?: boolean }) => {
  try {
    const applied = await migrateDatabase(readConfig());
    if (o.json) printJson({ applied });
    else console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
  } catch (error) {
    process.exitCode = reportError(error, Boolean(o.json));
  }
});

const merchant = program.command('merchant').description('merchants (商户)');
const OPERATOR_CREDIT = 'the operator\'s own limit, pre-tax yuan per month; the tax service\'s grant (授信额度) comes with its terms, and the lower binds';
merchant.command('add')
  .requiredOption('--name <name>', 'registered name (销售方名称)')
  .requiredOption('--tax-id <id>', '统一社会信用代码')
  .option('--region <code>', '2-digit province code that starts invoice numbers', '11')
  .option('--address <text>', '', '').option('--phone <text>', '', '').option('--bank <text>', '', '').option('--account <text>', '', '')
  .option('--daily-limit <n>', 'invoices per day (开票张数上限)').option('--monthly-credit <yuan>', OPERATOR_CREDIT)
  .addOption(json)
  .action(withStore(async (ports, o) => {
    const m = await addMerchant(ports, {
      name: o.name, taxId: o.taxId, regionCode: o.region, address: o.address, phone: o.phone, bank: o.bank, account: o.account,
      dailyInvoiceLimit: o.dailyLimit === undefined ? null : Number(o.dailyLimit), operatorCredit: o.monthlyCredit ?? null,
    });
    const notProvisioned = await provisionMerchant(ports, readConfig(), m); // terms and first numbers from the tax service
    if (notProvisioned) process.stderr.write(`warning: ${notProvisioned}\n`);
    if (o.json) printJson(merchantView((await ports.store.read.merchants.get(m.id)) ?? m)); // with the grant the terms brought
    else console.log(`merchant ${m.id} ${m.name} (${m.taxId})`);
  }));
merchant.command('list').addOption(json).action(withStore(async (ports, o) => {
  const list = await ports.store.read.merchants.list();
  if (o.json) printJson(list.map(merchantView));
  else for (const m of list) console.log(`${m.id}\t${m.taxId}\t${m.name}`);
}));
merchant.command('limits').description('set the daily count limit and the operator\'s own monthly credit limit; shows both credit limits (授信额度) and which binds')
  .requiredOption('--merchant <id>').option('--daily-limit <n>', 'invoices per day; "none" to lift').option('--monthly-credit <yuan>', `${OPERATOR_CREDIT}; "none" to lift`)
  .addOption(json)
  .action(withStore(async (ports, o) => {
    const current = await ports.store.read.merchants.get(o.merchant);
    if (!current) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: o.merchant });
    const daily = o.dailyLimit === undefined ? current.dailyInvoiceLimit : o.dailyLimit === 'none' ? null : Number(o.dailyLimit);
    const credit = o.monthlyCredit === undefined ? (current.operatorCreditFen === null ? null : formatYuan(current.operatorCreditFen)) : o.monthlyCredit === 'none' ? null : o.monthlyCredit;
    const m = await setMerchantLimits(ports, o.merchant, { dailyInvoiceLimit: daily, operatorCredit: credit }, `cli:${userInfo().username}`);
    if (o.json) printJson(merchantView(m));
    else console.log(`limits of ${m.id}: daily ${m.dailyInvoiceLimit ?? 'none'}, ${creditLineText(creditLineView(m))}`);
  }));

program.command('user').description('users (用户)').command('add')
  .requiredOption('--merchant <id>').requiredOption('--username <name>')
  .addOption(new Option('--role <role>').choices(['owner', 'clerk', 'auditor', 'operator']).default('clerk'))
  .option('--password <password>', 'the password; better: set FAPIAO_USER_PASSWORD so it stays out of shell history')
  .addOption(json)
  .action(withStore(async (ports, o) => {
    const password = o.password ?? process.env.FAPIAO_USER_PASSWORD;
    if (!password) throw new Fault(faults.FIELD_MISSING, { field: 'password' });
    const u = await addUser({ ...ports, passwords: argon2Hasher() }, { merchantId: o.merchant, username: o.username, password, role: o.role as Role, actor: `cli:${userInfo().username}` });
    const view = { id: u.id, merchant_id: u.merchantId, username: u.username, role: u.role };
    if (o.json) printJson(view);
    else console.log(`user ${u.username} (${u.role}) added to ${u.merchantId}`);
  }));

program.command('apikey').description('API keys for POS/ERP systems').command('create')
  .requiredOption('--merchant <id>')
  .addOption(new Option('--role <role>').choices(['owner', 'clerk', 'auditor', 'operator']).default('clerk'))
  .option('--label <text>', 'what the key is for', 'api')
  .addOption(json)
  .action(withStore(async (ports, o) => {
    if (!isRole(o.role)) throw new Fault(faults.FIELD_INVALID, { field: 'role', reason: ROLE_CHOICES });
    const { key, record } = await createApiKey(ports, { merchantId: o.merchant, role: o.role, label: o.label, actor: `cli:${userInfo().username}` });
    if (o.json) printJson({ key, id: record.id, merchant_id: record.merchantId, role: record.role, label: record.label });
    else console.log(`${key}\n(shown once; store it in the POS/ERP system now)`);
  }));

program.command('issue').description('issue an invoice from a JSON file (same body as POST /api/v1/invoices)')
  .requiredOption('--file <path>').requiredOption('--merchant <id>').option('--idempotency-key <key>')
  .addOption(json)
  .action(withStore(async (ports, o) => {
    const body = parseWith<z.infer<typeof IssueRequest>>(IssueRequest, readJson(o.file), 'body');
    const signer = await openSigner(ports.store, ports.clock, readConfig().dataDir); // signed like every invoice (R22)
    const { invoice } = await issueInvoice({ ...ports, signer }, cliCaller(o.merchant), body, o.idempotencyKey);
    if (o.json) printJson(invoiceView(invoice));
    else console.log(`issued ${invoice.number}  价税合计 ${invoiceView(invoice).total_with_tax}  ${invoiceView(invoice).total_in_words}`);
  }));

program.command('query').description('find invoices (查询)')
  .requiredOption('--merchant <id>').option('--number <number>')
  .option('--date-from <date>').option('--date-to <date>').option('--buyer-name <text>').option('--buyer-tax-id <id>')
  .option('--min-total <yuan>').option('--max-total <yuan>').option('--status <status>').option('--kind <kind>')
  .option('--cursor <cursor>').option('--limit <n>')
  .addOption(json)
  .action(withStore(async (ports, o) => {
    const caller = cliCaller(o.merchant);
    if (o.number) {
      const { invoice, problem } = await getInvoiceWithUpload(ports, caller, o.number);
      const view = invoiceDetailView(invoice, problem);
      if (o.json) return printJson(view);
      console.log(`${view.number}\t${view.issued_at}\t${view.status}\t${view.buyer.name}\t${view.total_with_tax}`);
      console.log(`upload: ${view.upload.state}${view.upload.code ? ` (${view.upload.code}) ${view.upload.reason ?? ''}` : ''}`);
      const v = view.void_report;
      if (v) console.log(`void at the tax service: ${v.state}${v.waiting_for ? ` (waiting for the ${v.waiting_for})` : ''}${v.at ? ` ${v.at}` : ''}${v.code ? ` (${v.code}) ${v.reason ?? ''}\n  ${v.remedy}` : ''}`);
      return;
    }
    const filters = Object.fromEntries(
      ['date_from', 'date_to', 'buyer_name', 'buyer_tax_id', 'min_total', 'max_total', 'status', 'kind', 'cursor', 'limit']
        .map((k) => [k, o[k.replace(/_(\w)/g, (_m: string, c: string) => c.toUpperCase())]])
        .filter(([, v]) => v !== undefined),
    );
    const page = await listInvoices(ports, caller, parseWith<z.infer<typeof InvoiceQuery>>(InvoiceQuery, filters, 'querystring'));
    if (o.json) printJson({ items: page.items.map(invoiceView), next_cursor: page.nextCursor });
    else {
      for (const i of page.items.map(invoiceView)) console.log(`${i.number}\t${i.issued_at}\t${i.status}\t${i.buyer.name}\t${i.total_with_tax}`);
      if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
    }
  }));

program.command('errors').description('look up fault codes (故障代码库)').argument('[code]')
  .option('--markdown', 'print the whole catalogue as Markdown (docs/fault-codes.md)').addOption(json)
  .action((code: string | undefined, o: { markdown?: boolean; json?: boolean }) => {
    if (o.markdown) return void process.stdout.write(faultCatalogueMarkdown());
    let specs: FaultSpec[];
    try {
      specs = code === undefined ? Object.values(faults) : [lookUpFault(code)];
    } catch (error) {
      process.exitCode = reportError(error, Boolean(o.json));
      return;
    }
    if (o.json) return printJson(code === undefined ? specs.map(faultView) : faultView(specs[0]!));
    for (const s of specs) console.log(`${s.code}  ${s.zh}\n      ${s.en}\n      原因/Cause: ${s.cause}\n      处理: ${s.remedy}\n      Remedy: ${s.remedyEn}\n`);
  });

program.command('chain').description('hash chains (防篡改)').command('verify')
  .description('walk every merchant\'s invoice and audit chains; exit 1 and name the invoice on any break')
  .option('--merchant <id>').addOption(json)
  .action(withStore(async (ports, o) => {
    const reports = await verifyChains(ports, o.merchant ? [o.merchant] : undefined);
    const breaks = reports.flatMap((r) => r.breaks);
    if (o.json) printJson({ ok: breaks.length === 0, merchants: reports });
    else {
      for (const r of reports) console.log(`${r.merchantId}: ${r.invoices} invoices, ${r.auditEntries} audit entries — ${r.breaks.length === 0 ? 'intact' : 'BROKEN'}`);
      for (const b of breaks) console.log(`BREAK ${b.merchantId} ${b.chain} at ${b.at}: ${b.reason}`);
    }
    return breaks.length === 0 ? 0 : 1;
  }));

program.command('backup').description('take an online backup, verified by restoring it into a scratch database (safe while servers run)')
  .requiredOption('--dir <dir>', 'directory holding the backups; each goes into fapiao-<UTC time>-<dialect>/')
  .option('--keep <n>', 'afterwards keep only the newest n verified backups in --dir')
  .option('--key-file <path>', 'encrypt the data file (AES-256-GCM); the file holds 32 raw bytes or 64 hex digits, chmod 600')
  .addOption(json)
  .action(async (o: { dir: string; keep?: string; keyFile?: string; json?: boolean }) => {
    try {
      const keep = o.keep === undefined ? undefined : Number(o.keep);
      if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1)) throw new Fault(faults.FIELD_INVALID, { field: '--keep', reason: bilingual('应为不小于 1 的整数', 'a whole number, at least 1') });
      const config = readConfig();
      const key = o.keyFile ? readKeyFile(o.keyFile) : undefined;
      const { path, manifest } = await backUp(config, { dir: o.dir, ...(key && { key }), ...(!o.json && { progress: (line: string) => console.log(line) }) });
      const removed = keep === undefined ? [] : await applyRetention(o.dir, dialectOf(config), keep);
      if (o.json) return printJson({ backup: path, manifest, removed });
      const v = manifest.verification!;
      console.log(`backup ${path}\n  verified in ${v.seconds} s: ${v.invoices} invoices, ${v.auditEntries} audit entries, ${manifest.merchants.length} merchants, chains intact${manifest.encryption ? '; encrypted' : ''}`);
      for (const gone of removed) console.log(`  removed by retention: ${gone}`);
    } catch (error) {
      process.exitCode = reportError(error, Boolean(o.json));
    }
  });

program.command('restore').description('restore a backup made by `fapiao backup` (an older schema is migrated); stop the servers first')
  .argument('<backup-dir>')
  .option('--dry-run', 'check everything, restore into a scratch database only, change nothing')
  .option('--key-file <path>', 'the key the backup was encrypted with')
  .addOption(json)
  .action(async (backupDir: string, o: { dryRun?: boolean; keyFile?: string; json?: boolean }) => {
    try {
      const key = o.keyFile ? readKeyFile(o.keyFile) : undefined;
      const result = await restore(readConfig(), backupDir, { dryRun: Boolean(o.dryRun), ...(key && { key }), ...(!o.json && { progress: (line: string) => console.log(line) }) });
      if (o.json) return printJson(result);
      console.log(result.dryRun ? `dry run: ${result.backup} restores and verifies; nothing was changed` : `restored ${result.backup}${result.previous ? `; the replaced database is kept as ${result.previous}` : ''}`);
    } catch (error) {
      process.exitCode = reportError(error, Boolean(o.json));
    }
  });

/** A JSON file in UTF-8, as the API takes it: read as bytes, so a GBK file is refused (1024) and not issued garbled. */
function readJson(path: string): unknown {
  try {
    return JSON.parse(decodeUtf8(readFileSync(path), path));
  } catch (error) {
    if (error instanceof Fault) throw error;
    throw new Fault(faults.REQUEST_MALFORMED, { reason: withOriginal(`${path} 中的 JSON 无法解析`, (error as Error).message, path) });
  }
}

registerDocumentCommands(program);
registerSimulatorCommands(program);
registerReconcileCommands(program);
registerNumberCommands(program);
registerDeliveryCommands(program); // printer, print, print-jobs, webhook, deliveries, export

await program.parseAsync(process.argv);
