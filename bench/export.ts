// `npm run bench:export [-- --invoices 100000]`: what an export of a big query costs, and whether
// memory stays flat while it runs (R12: 100,000 rows must never sit in memory at once).
//
// Fill: one merchant gets N real invoices (priced by draftInvoice, sealed into its hash chain,
// stored by the store's own repositories) in transactions of 5,000, on SQLite under a temporary
// directory. Each invoice has three lines, and the amounts vary in fen.
//
// Then, in this process, three passes over the same query (all invoices, newest first, pages of
// 200 through the same cursor as GET /api/v1/invoices):
//   baseline: the pages are read and dropped — what the query alone costs;
//   csv:      the pages are written to a CSV file by src/documents/export/csv.ts;
//   xlsx:     the pages are written to an XLSX file by src/documents/export/xlsx.ts.
// Heap and RSS are sampled every 10 ms; "peak heap over start" is the highest heapUsed minus the
// heapUsed after a full GC just before the pass. Flat memory means that figure does not grow with
// N: the report shows it for N/10 too. Ratios are against the baseline of the same run.
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { addMerchant } from '../src/app/merchants.js';
import { invoicePages } from '../src/app/export-invoices.js';
import type { MerchantRecord, Ports } from '../src/app/ports.js';
import { csvStream } from '../src/documents/export/csv.js';
import { writeXlsx } from '../src/documents/export/xlsx.js';
import { invoiceChainScope } from '../src/domain/audit-chain.js';
import { draftInvoice, type InvoiceRequest } from '../src/domain/draft.js';
import { printableCharacters } from '../src/documents/font.js';
import { GENESIS_HASH, sealInvoice, type Invoice } from '../src/domain/invoice.js';
import { invoiceNumber } from '../src/domain/numbering.js';
import { shanghaiTimestamp, systemClock } from '../src/domain/time.js';
import { openStore } from '../src/store/database.js';

const BATCH = 5_000;

function request(i: number): InvoiceRequest {
  return {
    kind: 'normal', prices_include_tax: false, remarks: `合同 HT-${i}`,
    buyer: { name: `厦门示例软件有限公司${i % 997}`, tax_id: '', address: '厦门市思明区软件园二期', phone: '0592-5550000', bank: '', account: '', email: '' },
    lines: [
      { name: '*信息技术服务*软件开发', tax_code: '3040201010000000000', spec: '', unit: '项', quantity: '1', unit_price: `${1000 + (i % 89)}.${String(i % 100).padStart(2, '0')}`, tax_rate: '0.06' },
      { name: '*纸制品*复印纸', tax_code: '1060201010000000000', spec: 'A4 70g', unit: '包', quantity: '10', unit_price: '25.50', tax_rate: '0.13' },
      { name: '*现代服务*咨询服务', tax_code: '3040300000000000000', spec: '', unit: '小时', quantity: '2', unit_price: '300', tax_rate: '0.06' },
    ],
  };
}

async function fill(ports: Ports, merchant: MerchantRecord, count: number): Promise<number> {
  const started = performance.now();
  const seller = { name: merchant.name, taxId: merchant.taxId, address: merchant.address, phone: merchant.phone, bank: merchant.bank, account: merchant.account };
  let head = { hash: GENESIS_HASH, index: 0 };
  const t0 = Date.UTC(2025, 0, 1);
  for (let done = 0; done < count; done += BATCH) {
    const rows: Invoice[] = [];
    for (let i = done; i < Math.min(count, done + BATCH); i++) {
      const invoice = sealInvoice(merchant.id, { ...draftInvoice(request(i), printableCharacters()), number: invoiceNumber(2025, merchant.regionCode, i + 1), issuedAt: shanghaiTimestamp(new Date(t0 + i * 60_000)), seller, issuer: 'bench' }, head);
      head = { hash: invoice.chainHash, index: invoice.chainIndex };
      rows.push(invoice);
    }
    await ports.store.write(async (tx) => {
      await tx.invoices.insert(rows);
      await tx.chain.advance([{ scope: invoiceChainScope(merchant.id), hash: head.hash, index: head.index }]);
    });
    process.stdout.write(`\r  filled ${Math.min(count, done + BATCH).toLocaleString('en')} / ${count.toLocaleString('en')}`);
  }
  process.stdout.write('\n');
  return (performance.now() - started) / 1000;
}

interface Pass {
  label: string;
  invoices: number;
  rows: number;
  seconds: number;
  peakHeapOverStartMb: number;
  peakRssMb: number;
  bytes: number | null;
}

async function measure(label: string, invoices: number, work: (count: () => void) => Promise<string | null>): Promise<Pass> {
  (globalThis as { gc?: () => void }).gc?.();
  const start = process.memoryUsage();
  let peakHeap = start.heapUsed;
  let peakRss = start.rss;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
  }, 10);
  let rows = 0;
  const t = performance.now();
  const file = await work(() => void (rows += 1));
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  const end = process.memoryUsage();
  peakHeap = Math.max(peakHeap, end.heapUsed);
  peakRss = Math.max(peakRss, end.rss);
  return { label, invoices, rows, seconds, peakHeapOverStartMb: (peakHeap - start.heapUsed) / 2 ** 20, peakRssMb: peakRss / 2 ** 20, bytes: file ? statSync(file).size : null };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { invoices: { type: 'string', default: '100000' } } });
  const count = Number(values.invoices);
  if (!(global as { gc?: unknown }).gc) console.log('(run with node --expose-gc for exact heap baselines)');
  const dir = mkdtempSync(join(tmpdir(), 'fapiao-bench-export-'));
  const store = await openStore({ dataDir: dir });
  const ports: Ports = { store, clock: systemClock };
  try {
    const merchant = await addMerchant(ports, { name: '厦门示例贸易有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
    console.log(`fill: ${count.toLocaleString('en')} invoices (SQLite, ${dir})`);
    const fillSeconds = await fill(ports, merchant, count);
    console.log(`  ${fillSeconds.toFixed(1)} s`);
    const caller = { merchantId: merchant.id, role: 'auditor' as const, actor: 'bench' };

    const passes: Pass[] = [];
    for (const n of [Math.round(count / 10), count]) {
      // Only the newest n invoices: the date filter would change the plan, so cut the pages instead.
      const limited = async function* (pages: AsyncIterable<Invoice[]>, count: () => void) {
        let left = n;
        for await (const page of pages) {
          const slice = page.slice(0, left);
          left -= slice.length;
          for (let i = 0; i < slice.length; i++) count();
          yield slice;
          if (left <= 0) return;
        }
      };
      passes.push(await measure('baseline (read pages only)', n, async (count) => {
        for await (const _page of limited(await invoicePages(ports, caller, {}), count)) { /* dropped */ }
        return null;
      }));
      passes.push(await measure('csv', n, async (count) => {
        const file = join(dir, `export-${n}.csv`);
        await pipeline(csvStream(limited(await invoicePages(ports, caller, {}), count)), createWriteStream(file));
        return file;
      }));
      passes.push(await measure('xlsx', n, async (count) => {
        const file = join(dir, `export-${n}.xlsx`);
        const out = createWriteStream(file);
        await writeXlsx(limited(await invoicePages(ports, caller, {}), count), out);
        if (!out.writableFinished) await once(out, 'finish');
        return file;
      }));
    }

    console.log('\nexport of one merchant\'s invoices, newest first, pages of 200 (one process, SQLite)');
    console.log('pass                          invoices    seconds   invoices/s  vs baseline   peak heap over start   peak RSS    file');
    for (const p of passes) {
      const baseline = passes.find((b) => b.invoices === p.invoices && b.label.startsWith('baseline'))!;
      console.log(
        `${p.label.padEnd(28)}  ${p.invoices.toLocaleString('en').padStart(8)}  ${p.seconds.toFixed(2).padStart(8)}  ${Math.round(p.rows / p.seconds).toLocaleString('en').padStart(11)}` +
          `  ${(p.seconds / baseline.seconds).toFixed(2).padStart(10)}×  ${p.peakHeapOverStartMb.toFixed(1).padStart(17)} MB  ${p.peakRssMb.toFixed(0).padStart(6)} MB  ${p.bytes === null ? '' : `${(p.bytes / 2 ** 20).toFixed(1)} MB`}`,
      );
      if (p.rows !== p.invoices) throw new Error(`${p.label}: ${p.rows} rows for ${p.invoices} invoices`);
    }
    const [small, big] = [passes.filter((p) => p.invoices !== count), passes.filter((p) => p.invoices === count)];
    const growth = big.map((p, i) => `${p.label.split(' ')[0]} ${(p.peakHeapOverStartMb - small[i]!.peakHeapOverStartMb).toFixed(1)} MB`).join(', ');
    console.log(`\nheap growth from ${small[0]!.invoices.toLocaleString('en')} to ${count.toLocaleString('en')} invoices (flat means streamed): ${growth}`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
