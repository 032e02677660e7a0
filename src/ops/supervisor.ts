// The primary of a server with several processes: it forks the HTTP processes and, once they all
// serve, the background one; replaces one that dies; gives up on one that cannot start; and on
// SIGTERM or SIGINT stops them all before it exits itself.
//
// Why the primary waits for its workers: a primary that exits first leaves them running as orphans
// (answering requests after `fapiao serve` has "stopped", holding the port and the database for a
// restart or a restore), and in a container every process dies with PID 1 mid-request.
//
// Why it gives up: a worker that fails before it ever served (the port taken, a file it cannot
// read) fails the same way the next time; starting another every half second for ever hides the
// failure from whoever runs the server. One process alone (FAPIAO_WORKERS=1) exits with the error;
// a cluster now does too.
import cluster, { type Worker } from 'node:cluster';
import { Counter, type Registry } from 'prom-client';

export type WorkerRole = 'http' | 'background';

/** How a worker learns what it is for. */
const ROLE_ENV = 'FAPIAO_PROCESS_ROLE';
/** Sent by a worker once it serves: HTTP processes listen, the background loops have started. */
const STARTED = 'fapiao:worker-started';

/** The replacement of a dead worker waits this long; each further death in a row doubles it… */
const RESTART_DELAY_FIRST_MS = 500;
/** …up to this. */
const RESTART_DELAY_MAX_MS = 30_000;
/** A worker that served this long before it died was healthy: its replacement waits the first delay again. */
const HEALTHY_AFTER_MS = 60_000;
/** Workers in a row that end on their own before they serve, after which the primary gives up. */
const FAILED_STARTS_BEFORE_GIVING_UP = 2;
/** How long the primary waits for its workers to finish their requests and stop before it kills them. */
export const STOP_TIMEOUT_MS = 30_000;
/**
 * Signals that someone else sent (an operator's kill -9, the OOM killer, a stop): a worker ended
 * by one of them before it served says nothing about whether it can start.
 */
const SIGNALS_FROM_OUTSIDE = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']);

/** What this process is for, in a worker. */
export function workerRole(): WorkerRole {
  return process.env[ROLE_ENV] === 'background' ? 'background' : 'http';
}

/** In a worker: tell the primary this process serves (see STARTED). */
export function announceStarted(): void {
  process.send?.({ type: STARTED });
}

/** The wait before the next replacement, after `restartsInARow` replacements since a worker was last healthy. */
export function restartDelayMs(restartsInARow: number): number {
  return Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_FIRST_MS * 2 ** restartsInARow);
}

/** One place in the cluster (an HTTP process, the background process) and what befell its workers. */
interface Slot {
  role: WorkerRole;
  /** When its current worker said it serves; undefined while it starts. */
  startedAt: number | undefined;
  /** Its workers in a row that ended on their own before they served. */
  failedStarts: number;
  /** Replacements since one of its workers was last healthy (sets the next delay). */
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

export interface SupervisorOptions {
  httpProcesses: number;
  /** The primary's own registry: `fapiao_worker_restarts_total` goes there. */
  registry: Registry;
  /** Stops what the primary itself runs (scheduled backups), first thing when it stops. */
  stopOwnWork(): void;
}

/** In the primary: start the workers and look after them until SIGTERM or SIGINT. */
export function superviseWorkers(options: SupervisorOptions): void {
  const workerRestarts = new Counter({
    name: 'fapiao_worker_restarts_total', help: 'Server processes started again after one died, by role', labelNames: ['role'], registers: [options.registry],
  });
  const newSlot = (role: WorkerRole): Slot => ({ role, startedAt: undefined, failedStarts: 0, restarts: 0, restartTimer: undefined });
  const httpSlots = Array.from({ length: options.httpProcesses }, () => newSlot('http'));
  const backgroundSlot = newSlot('background');
  const slotOf = new Map<Worker, Slot>();
  let backgroundForked = false;
  let stopping = false;

  const fork = (slot: Slot) => {
    if (stopping) return; // a worker that says it started while the others stop must not bring the background one
    slot.restartTimer = undefined;
    slot.startedAt = undefined;
    slotOf.set(cluster.fork({ [ROLE_ENV]: slot.role }), slot);
  };

  cluster.on('message', (worker, message: { type?: string } | undefined) => {
    const slot = slotOf.get(worker);
    if (message?.type !== STARTED || !slot) return;
    slot.startedAt = Date.now();
    slot.failedStarts = 0;
    // The background process starts once the counter is open: after a crash, serving comes first.
    if (!backgroundForked && httpSlots.every((http) => http.startedAt !== undefined)) {
      backgroundForked = true;
      fork(backgroundSlot);
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const slot = slotOf.get(worker);
    slotOf.delete(worker);
    if (!slot || stopping) return;
    const how = signal ?? `exit code ${code}`;
    if (slot.startedAt === undefined && !SIGNALS_FROM_OUTSIDE.has(signal)) {
      slot.failedStarts += 1;
      if (slot.failedStarts >= FAILED_STARTS_BEFORE_GIVING_UP) {
        void stop(`the ${slot.role} process failed to start ${slot.failedStarts} times in a row (last: ${how}); its error is above`, 1);
        return;
      }
    } else if (slot.startedAt !== undefined && Date.now() - slot.startedAt >= HEALTHY_AFTER_MS) {
      slot.restarts = 0;
    }
    const delayMs = restartDelayMs(slot.restarts);
    slot.restarts += 1;
    workerRestarts.inc({ role: slot.role });
    process.stderr.write(`${slot.role} process ${worker.process.pid} ended (${how}); starting another in ${delayMs} ms\n`);
    slot.restartTimer = setTimeout(() => fork(slot), delayMs);
  });

  /** Stops every worker, then exits: with `exitCode`, or 1 if a worker had to be killed. */
  const stop = async (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`fapiao serve is stopping: ${reason}\n`);
    for (const slot of [...httpSlots, backgroundSlot]) clearTimeout(slot.restartTimer);
    options.stopOwnWork();
    const workers = [...slotOf.keys()]; // every worker alive: each is dropped from slotOf when it exits
    const exits = Promise.all(workers.map((worker) => new Promise((exited) => worker.once('exit', exited))));
    for (const worker of workers) worker.process.kill('SIGTERM');
    let killed = false;
    const deadline = setTimeout(() => {
      killed = true;
      const stuck = workers.filter((worker) => !worker.isDead());
      process.stderr.write(`killed ${stuck.length} server process(es) still running ${STOP_TIMEOUT_MS / 1000} s after SIGTERM: ${stuck.map((w) => w.process.pid).join(', ')}\n`);
      for (const worker of stuck) worker.process.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    await exits;
    clearTimeout(deadline);
    process.exit(killed ? 1 : exitCode);
  };
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));

  for (const slot of httpSlots) fork(slot);
}
