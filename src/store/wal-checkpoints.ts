// Checkpoints of the embedded database's WAL, off every event loop.
//
// SQLite checkpoints inside the COMMIT that pushes the WAL past its threshold (1000 pages by
// default): that commit copies the pages into the database file and fsyncs both files, and with
// better-sqlite3 the process's event loop stops meanwhile. A server process answering requests
// saw such commits take 5–25 ms, a dozen times a second under load. Here a worker thread with a
// connection of its own runs a PASSIVE checkpoint a few times a second: it never takes the write
// lock, so writers go on, and it blocks no event loop. The writers keep SQLite's own checkpoint
// only as a backstop (WAL_BACKSTOP_PAGES), for when no checkpointer runs.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The writers' own checkpoint threshold: far above what the checkpointer lets the WAL reach. */
export const WAL_BACKSTOP_PAGES = 10_000;

const CHECKPOINT_EVERY_MS = 100;

// CommonJS, evaluated in the worker: the same code whether the server runs from dist or from source.
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.file);
db.pragma('busy_timeout = 0');
let reportedAt = 0;
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    // Busy: another checkpoint is running. Anything else is told once a minute at most.
    if (String(error && error.code).startsWith('SQLITE_BUSY') || Date.now() - reportedAt < 60000) return;
    reportedAt = Date.now();
    parentPort.postMessage({ failed: String(error && error.message) });
  }
}, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface WalCheckpointer {
  stop(): Promise<void>;
}

/** Starts checkpointing `databaseFile` in a worker thread; `onFailure` hears of failed checkpoints (once a minute at most). */
export function startWalCheckpointer(databaseFile: string, onFailure: (message: string) => void, everyMs = CHECKPOINT_EVERY_MS): WalCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_CODE, { eval: true, workerData: { driver, file: databaseFile, everyMs } });
  worker.on('message', (message: { failed?: string }) => message.failed && onFailure(message.failed));
  worker.on('error', (error) => onFailure(error.message));
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      await exited;
    },
  };
}
