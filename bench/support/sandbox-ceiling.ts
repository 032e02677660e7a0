// The sandbox tax service's own ingest ceiling: batches of 1,000 signed records of realistic size
// (about 1 KB of canonical content each) uploaded straight to the sandbox, one submission after the
// other (as one uploader does) or several at once, as fast as it accepts them. bench/drain.ts puts
// Fapiao's drain time next to this figure, measured in the same run.
//
//   node --import tsx bench/support/sandbox-ceiling.ts [--url <sandbox base URL>] [--seconds 5] [--concurrency 1]
// Without --url a standalone sandbox is started in a temporary directory.
import { createHash, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTaxServiceClient } from '../../src/upstream/client.js';
import { enroll, staticCredentials } from '../../src/upstream/credentials.js';
import { encodeUploadRecord, MAX_RECORDS_PER_UPLOAD, type EncodedUploadRecord } from '../../src/upstream/protocol.js';
import { startSandbox } from '../../src/upstream/simulator/server.js';

export interface CeilingOptions {
  /** The sandbox's base URL (standalone, or http://host:port/sandbox). */
  url: string;
  durationMs?: number;
  /** Submissions in flight at once (default 1). */
  concurrency?: number;
  batchSize?: number;
}

export interface CeilingResult {
  recordsPerSecond: number;
  records: number;
  batches: number;
  ms: number;
  /** Median and worst time of one submission of `batchSize` records. */
  batchP50Ms: number;
  batchMaxMs: number;
}

/** A fresh taxpayer ID of the right shape for each run, so runs never meet in the sandbox. */
function freshSeller(): string {
  return `91${String(randomInt(10 ** 9, 10 ** 10 - 1))}${String(randomInt(10 ** 5, 10 ** 6 - 1))}X`.slice(0, 18);
}

function records(count: number, prefix: string): EncodedUploadRecord[] {
  const filler = '*信息技术服务*软件开发 '.repeat(30);
  return Array.from({ length: count }, (_, i) => {
    const number = `${prefix}${String(i).padStart(20 - prefix.length, '0')}`;
    const content = JSON.stringify(['fapiao/1', number, 'normal', '2026-11-21T10:00:00.000+08:00', filler, i]);
    return encodeUploadRecord({ number, kind: 'normal', issuedAt: '2026-11-21T10:00:00.000+08:00', buyerTaxId: '', totalAmountFen: '144800', totalTaxFen: '11624', digest: createHash('sha256').update(content).digest('hex'), content });
  });
}

export async function measureSandboxCeiling(options: CeilingOptions): Promise<CeilingResult> {
  const durationMs = options.durationMs ?? 5_000;
  const batchSize = options.batchSize ?? MAX_RECORDS_PER_UPLOAD;
  const seller = freshSeller();
  const key = await enroll(options.url, seller);
  const client = createTaxServiceClient({ baseUrl: options.url, credentials: staticCredentials({ [seller]: key }), timeoutMs: 60_000, failureThreshold: 1_000_000 });
  // Built before the clock starts, so the figure is the sandbox's, not this generator's.
  const prepared = records(Math.max(batchSize * 400, 1), '2631');
  let next = 0;
  const times: number[] = [];
  const started = performance.now();
  const worker = async () => {
    while (performance.now() - started < durationMs && next + batchSize <= prepared.length) {
      const batch = prepared.slice(next, (next += batchSize));
      const t = performance.now();
      const answer = await client.upload(seller, batch);
      times.push(performance.now() - t);
      if (answer.outcomes.some((o) => o.result !== 'accepted')) throw new Error('the sandbox did not accept every record (is a fault set?)');
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  const ms = performance.now() - started;
  times.sort((a, b) => a - b);
  const recordsSent = times.length * batchSize;
  return { recordsPerSecond: Math.round((recordsSent / ms) * 1000), records: recordsSent, batches: times.length, ms: Math.round(ms), batchP50Ms: Math.round(times[Math.floor(times.length / 2)] ?? 0), batchMaxMs: Math.round(times.at(-1) ?? 0) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { url: { type: 'string' }, seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '1' } } });
  let dataDir: string | undefined;
  let close = async () => {};
  let url = values.url;
  if (!url) {
    dataDir = mkdtempSync(join(tmpdir(), 'fapiao-ceiling-'));
    const sandbox = await startSandbox({ dataDir });
    url = sandbox.url;
    close = () => sandbox.close();
  }
  try {
    const result = await measureSandboxCeiling({ url, durationMs: Number(values.seconds) * 1000, concurrency: Number(values.concurrency) });
    console.log(`sandbox ingest ceiling at ${url}: ${result.recordsPerSecond} records/s (${result.records} records in ${result.batches} batches of 1000, ${result.ms} ms; one batch p50 ${result.batchP50Ms} ms, max ${result.batchMaxMs} ms)`);
  } finally {
    await close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}
