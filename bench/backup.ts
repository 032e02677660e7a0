// One-off measurement (R33): how long a verified backup and a restore take for a SQLite store
// holding 100,000 invoices, and how long the event loop stalls meanwhile (the server runs scheduled
// backups in-process). Not part of the test suite.
//   node --import tsx bench/backup.ts [invoices]
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openStore, sqliteFile, type StoreConfig } from '../src/store/database.js';
import { addMerchant } from '../src/app/merchants.js';
import { issueInvoice } from '../src/app/issue-invoice.js';
import { backUp, readKeyFile, restore } from '../src/app/backups.js';
import { systemClock } from '../src/domain/time.js';
import type { InvoiceRequest } from '../src/domain/draft.js';

const INVOICES = Number(process.argv[2] ?? 100_000);
const BATCH = 500;

const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `bench #${i}`,
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43', address: '福建省福州市鼓楼区示例路1号', phone: '0591-88888888', bank: '', account: '', email: '' },
  lines: [
    { name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + (i % 900)}.00`, tax_rate: '0.06' },
    { name: '*现代服务*技术咨询', tax_code: '3040203000000000000', spec: '', unit: '次', quantity: '2', unit_price: '350.00', tax_rate: '0.06' },
  ],
});

/** Runs `work`, timing each progress line from the start, and the event loop's worst stall. */
async function timed<T>(label: string, work: (progress: (line: string) => void) => Promise<T>) {
  const started = performance.now();
  const steps: Array<[string, number]> = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const result = await work((line) => steps.push([line, (performance.now() - started) / 1000]));
  loop.disable();
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${label}: ${seconds.toFixed(2)} s (event loop: p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, max ${(loop.max / 1e6).toFixed(0)} ms)`);
  for (const [line, at] of steps) console.log(`  ${at.toFixed(2).padStart(7)} s  ${line}`);
  return { result, seconds };
}

const root = mkdtempSync(join(tmpdir(), 'fapiao-bench-backup-'));
try {
  const live: StoreConfig = { dataDir: join(root, 'live') };
  const store = await openStore(live);
  const ports = { store, clock: systemClock };
  const merchant = await addMerchant(ports, { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' });
  const caller = { merchantId: merchant.id, role: 'clerk' as const, actor: 'bench' };
  const filling = performance.now();
  for (let done = 0; done < INVOICES; done += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, INVOICES - done) }, (_, i) => issueInvoice(ports, caller, request(done + i))));
  }
  const size = statSync(sqliteFile(live.dataDir)).size + statSync(`${sqliteFile(live.dataDir)}-wal`, { throwIfNoEntry: false })!.size;
  console.log(`filled ${INVOICES} invoices in ${((performance.now() - filling) / 1000).toFixed(1)} s; database ${(size / 1024 / 1024).toFixed(0)} MB (file + WAL)`);

  const keyFile = join(root, 'backup.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const key = readKeyFile(keyFile);
  const dir = join(root, 'backups');
  // The store stays open, as a running server's would: these are online backups.
  const plain = await timed('backup (online, verified)', (progress) => backUp(live, { dir, progress }));
  const encrypted = await timed('backup (online, verified, AES-256-GCM)', (progress) => backUp(live, { dir, key, progress }));
  await timed('restore --dry-run', (progress) => restore(live, plain.result.path, { dryRun: true, progress }));
  await store.close();
  const restored = await timed('restore (replaces the database)', (progress) => restore(live, plain.result.path, { progress }));
  await timed('restore of the encrypted backup', (progress) => restore(live, encrypted.result.path, { key, progress }));

  const manifest = plain.result.manifest;
  console.log(
    `\nsummary: ${manifest.rowCounts.invoices} invoices, data file ${(manifest.files[manifest.dataFile]!.size / 1024 / 1024).toFixed(0)} MB; ` +
      `backup ${plain.seconds.toFixed(1)} s (encrypted ${encrypted.seconds.toFixed(1)} s), restore ${restored.seconds.toFixed(1)} s; ` +
      `verification walked ${restored.result.verification.invoices} invoices`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
