// A scheduled backup runs in a worker thread of its own, at a lower CPU priority than the server.
//
// Why: a verified backup is CPU work for seconds per 100,000 invoices (the copy, then the chain
// walk on a restored copy), and it ran in the primary at the priority of the HTTP processes, with
// the primary's event loop (which hands out every new connection) stalled up to ~150 ms at a time.
// On Linux a thread's nice value is its own (setpriority on the calling thread), so the thread
// lowers only itself: the counter keeps its share of the CPU, the backup takes what is left.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Fault, faultByCode, type FaultParams } from '../domain/faults.js';
import type { StoreConfig } from '../store/database.js';
import type { Manifest } from '../store/backup.js';

export interface ThreadBackup {
  dir: string;
  now: Date;
  key?: Buffer;
}

type Answer =
  | { ok: true; path: string; manifest: Manifest }
  | { ok: false; code?: number; params?: FaultParams; message: string };

// CommonJS, evaluated in the worker. It loads this build's backups module: compiled (dist) as it
// is, or the TypeScript source through tsx when the server runs from source (bin/fapiao.mjs, tests).
const THREAD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const os = require('node:os');
(async () => {
  try {
    os.setPriority(Math.max(os.getPriority(), workerData.nice)); // only ever lower: raising needs privileges
  } catch {}
  if (workerData.tsx) (await import(workerData.tsx)).register();
  const { backUp } = await import(workerData.module);
  const { key, now, ...rest } = workerData.options;
  const { path, manifest } = await backUp(workerData.config, { ...rest, now: new Date(now), ...(key && { key: Buffer.from(key) }) });
  parentPort.postMessage({ ok: true, path, manifest });
})().catch((error) => {
  const fault = error && error.spec ? { code: error.spec.code, params: error.params } : {};
  parentPort.postMessage({ ok: false, ...fault, message: String((error && error.message) || error) });
});
`;

/** `backUp` in a worker thread at nice `nice` (or lower, if the process already runs lower). */
export function backUpInThread(config: StoreConfig, options: ThreadBackup, nice: number): Promise<{ path: string; manifest: Manifest }> {
  const fromSource = extname(fileURLToPath(import.meta.url)) === '.ts';
  const storeConfig: StoreConfig = {
    dataDir: config.dataDir,
    ...(config.databaseUrl !== undefined && { databaseUrl: config.databaseUrl }),
    ...(config.schema !== undefined && { schema: config.schema }),
    ...(config.namedStatements !== undefined && { namedStatements: config.namedStatements }),
  };
  const worker = new Worker(THREAD_CODE, {
    eval: true,
    workerData: {
      config: storeConfig,
      options: { dir: options.dir, now: options.now.toISOString(), ...(options.key && { key: new Uint8Array(options.key) }) },
      nice,
      module: new URL(`./backups${fromSource ? '.ts' : '.js'}`, import.meta.url).href,
      tsx: fromSource ? tsxLoader() : undefined,
    },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', (answer: Answer) => {
      void worker.terminate();
      if (answer.ok) resolve({ path: answer.path, manifest: answer.manifest });
      else reject(faultFrom(answer));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the backup thread ended (exit code ${code}) without an answer`))); // no-op once settled
  });
}

/** The thread's fault as the same Fault (its code and parameters), or the error as it was told. */
function faultFrom(answer: Extract<Answer, { ok: false }>): Error {
  const spec = answer.code === undefined ? undefined : faultByCode(answer.code);
  return spec ? new Fault(spec, answer.params ?? {}) : new Error(answer.message);
}

/** tsx's ESM registration entry, read from its package's exports (its CommonJS one cannot register from an eval'd thread). */
function tsxLoader(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return new URL(manifest.exports['./esm/api']!.import.default, pathToFileURL(manifestPath)).href;
}
