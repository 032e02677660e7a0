// `fapiao numbers …` and `fapiao status`: the number reserve (号段) and the link to the tax
// service, from the command line. Also the first numbers of a merchant just added.
import { userInfo } from 'node:os';
import { type Command, Option } from 'commander';
import { readConfig, type Config } from '../config.js';
import { openStore } from '../store/database.js';
import { shanghaiDate, systemClock } from '../domain/time.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { grantNumberBlock } from '../app/number-blocks.js';
import { merchantStatus } from '../app/contingency.js';
import { createUpkeep } from '../app/upstream-upkeep.js';
import type { MerchantRecord, Ports, Store } from '../app/ports.js';
import type { TaxService } from '../upstream/protocol.js';
import { createTaxServiceClient } from '../upstream/client.js';
import { storedCredentials } from '../upstream/credentials.js';
import { taxServiceClientFor, upstreamSetup } from '../upstream/setup.js';
import { startSandbox } from '../upstream/simulator/server.js';
import { statusView } from '../http/routes/status.js';
import { creditLineText, printJson, reportError } from './output.js';

const json = new Option('--json', 'print JSON');

/**
 * The tax service for a command: FAPIAO_UPSTREAM_URL, or else this data directory's own sandbox —
 * served for the length of the command on a port of its own, from the same database file the
 * server mounts, so numbers granted here and by the server never overlap.
 */
export async function withTaxService<T>(config: Config, store: Store, work: (taxService: TaxService) => Promise<T>): Promise<T> {
  const setup = upstreamSetup(config);
  if (!setup.sandbox) return work(taxServiceClientFor(setup, store, systemClock, { timeoutMs: config.upload.timeoutMs }));
  const sandbox = await startSandbox({ dataDir: config.dataDir });
  try {
    return await work(createTaxServiceClient({ baseUrl: sandbox.url, credentials: storedCredentials(store, sandbox.url, systemClock), timeoutMs: config.upload.timeoutMs }));
  } finally {
    await sandbox.close();
  }
}

/** A merchant just added gets its terms and first numbers at once; failing that, the server's upkeep fetches them later. */
export async function provisionMerchant(ports: Ports, config: Config, merchant: MerchantRecord): Promise<string | undefined> {
  try {
    await withTaxService(config, ports.store, async (taxService) => {
      await createUpkeep(ports, taxService, { reserve: { floor: config.upload.reserveFloor, days: 1, maxBlock: 100_000 } }).merchant(merchant);
    });
    return undefined;
  } catch (error) {
    return `no invoice numbers yet (${error instanceof Error ? error.message : String(error)}); the server fetches them once it reaches the tax service`;
  }
}

export function registerNumberCommands(program: Command): void {
  const numbers = program.command('numbers').description('invoice number blocks (号段) from the tax service');

  numbers.command('grant').description('enter a block the tax office assigned by other means (e.g. during an outage)')
    .requiredOption('--merchant <id>').requiredOption('--year <yyyy>').requiredOption('--first <n>').requiredOption('--last <n>')
    .addOption(json)
    .action(withPorts(async (ports, o) => {
      const block = await grantNumberBlock(ports, o.merchant, { year: whole(o.year, '--year'), first: whole(o.first, '--first'), last: whole(o.last, '--last') }, `cli:${userInfo().username}`);
      if (o.json) printJson(block);
      else console.log(`block ${block.blockId}: ${block.year} ${block.first}–${block.last} granted to ${block.merchantId}`);
    }));

  numbers.command('list').requiredOption('--merchant <id>').option('--year <yyyy>').addOption(json)
    .action(withPorts(async (ports, o) => {
      const year = o.year ? whole(o.year, '--year') : Number(shanghaiDate(systemClock.now()).slice(0, 4));
      const blocks = await ports.store.read.numberBlocks.list(o.merchant, year);
      if (o.json) printJson({ year, blocks });
      else for (const b of blocks) console.log(`${b.blockId}\t${b.year}\t${b.first}–${b.last}\tnext ${b.next}\t${b.source}`);
    }));

  program.command('status').description('online or contingency (离线), limits used, backlog, numbers in reserve, the month\'s credit line (授信额度)')
    .requiredOption('--merchant <id>').addOption(json)
    .action(withPorts(async (ports, o) => {
      const view = statusView(await merchantStatus(ports, { merchantId: o.merchant, role: 'owner', actor: 'cli' }), null);
      if (o.json) printJson(view);
      else {
        console.log(`${view.mode === 'online' ? '在线 online' : '离线 contingency'}${view.since ? ` since ${view.since}` : ''}${view.last_error ? ` — ${view.last_error}` : ''}`);
        console.log(`backlog: ${view.backlog.count} invoices, ${view.backlog.pre_tax_total} yuan pre-tax, oldest ${view.backlog.oldest_issued_at ?? '—'}`);
        for (const l of view.limits) console.log(`  ${l.kind}: ${l.hours_used} / ${l.max_offline_hours} h, ${l.amount_used} / ${l.max_offline_amount} yuan${l.blocked ? ' BLOCKED — ' + l.unlock : l.warning ? ' (80 % warning)' : ''}`);
        console.log(`numbers in reserve for ${view.numbers.year}: ${view.numbers.remaining} in ${view.numbers.blocks} block(s)`);
        const credit = view.credit_line;
        console.log(`${creditLineText(credit)}; ${credit.month}: ${credit.used} yuan used${credit.remaining === null ? '' : `, ${credit.remaining} yuan left`}`);
        console.log(`voids not yet at the tax service: ${view.voids.pending}; refused by it: ${view.voids.refused}`);
      }
    }));
}

function whole(text: string, field: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Fault(faults.FIELD_INVALID, { field, reason: bilingual('应为整数', 'a whole number') });
  return n;
}

function withPorts(action: (ports: Ports, o: Record<string, any>) => Promise<void>) {
  return async (...args: any[]) => {
    const command = args.at(-1) as Command;
    const o = command.optsWithGlobals();
    try {
      const store = await openStore(readConfig());
      try {
        await action({ store, clock: systemClock }, o);
      } finally {
        await store.close();
      }
    } catch (error) {
      process.exitCode = reportError(error, Boolean(o.json));
    }
  };
}
