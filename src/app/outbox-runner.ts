// The loop that works off one outbox topic (the upload to the tax service, deliveries, …). Each
// server process runs one per topic; they share the rows through leases (outbox.claim), so any
// number of processes and instances may run side by side, and the work of one that died is taken
// over when its lease runs out. A job is finished only by the process still holding its lease.
//
// The handler gets a batch of claimed jobs and says what became of each: done (the runner marks it
// so), retry (given back, due again after a backoff with jitter that grows with its attempts), or
// nothing (the handler completed it inside its own transaction, or leaves it to its lease). It may
// also ask the loop to pause (flow control, e.g. the tax service's waitSeconds). A handler that
// throws gives the whole batch back and the loop backs off.
import { shanghaiTimestamp } from '../domain/time.js';
import { Fault } from '../domain/faults.js';
import type { OutboxJob, Ports } from './ports.js';
import { leaseOwner } from './process-identity.js';

export interface BatchResult {
  /** Jobs the runner marks done. */
  done?: number[];
  /** Jobs to give back; due again after `delayMs`, or after the runner's backoff for their attempts. */
  retry?: Array<{ id: number; delayMs?: number }>;
  /** Claim nothing more for this long (flow control). */
  pauseMs?: number;
  /**
   * The batch failed, but the handler has already settled its jobs (given them back itself): the
   * loop backs off and logs it as it would for a thrown error, without giving anything back again.
   */
  failure?: unknown;
}

export interface OutboxHandler {
  topic: string;
  handle(jobs: OutboxJob[], lease: Lease): Promise<BatchResult>;
  /**
   * Milliseconds to wait before claiming anything (0 = go): e.g. while the tax service's circuit is
   * open, claiming jobs only to give them back would cost writes and nothing else. `claiming` is
   * false when the runner only asks how long to wait (after a failure): a handler that gives turns
   * to its lanes (circuitNotBefore) must not give one to a lane that will not use it.
   */
  notBefore?(claiming: boolean): number;
}

/** What a handler needs to finish jobs itself: whose lease it is and until when. */
export interface Lease {
  owner: string;
  until: Date;
}

export interface RunnerLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

export interface RunnerMetrics {
  /** Called once per job outcome ('done' | 'retry' | 'handled') and per failed batch ('error'). */
  count(topic: string, outcome: string, n: number, code?: number): void;
}

export interface RunnerOptions {
  /** Jobs claimed at once. */
  batchSize?: number;
  /** How long a claim is held; longer than the slowest batch, or another process takes it over. */
  leaseMs?: number;
  /** How often to look for due work when there is none. */
  idleMs?: number;
  /** First retry delay; doubles with each attempt up to `maxBackoffMs`, ±50 % jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** This process's name in lease columns (defaults to host-pid-random). */
  owner?: string;
  log?: RunnerLog;
  metrics?: RunnerMetrics;
}

export interface OutboxRunner {
  readonly owner: string;
  /** Look for work now instead of at the next poll (e.g. after an issue, or when the upstream is back). */
  wake(): void;
  /** Look for work now if the loop sleeps because it found too little, not during a backoff or a pause. */
  wakeIfIdle(): void;
  /** Runs one claim-and-handle round; resolves with the number of jobs claimed (tests, benchmarks). */
  runOnce(): Promise<number>;
  /** Stops after the batch in hand; resolves when the loop has ended. */
  stop(): Promise<void>;
}

const quiet: RunnerLog = { info() {}, warn() {} };

/** How often a runner looks for due work when there was none, unless told (RunnerOptions.idleMs). */
export const DEFAULT_IDLE_MS = 500;

/** Backoff for the n-th attempt (1-based): base·2^(n−1), capped, times a random factor 0.5–1.5. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exponential * (0.5 + random()));
}

export function startOutboxRunner(ports: Ports, handler: OutboxHandler, options: RunnerOptions = {}): OutboxRunner {
  const runner = createOutboxRunner(ports, handler, options);
  runner.start();
  return runner;
}

export function createOutboxRunner(ports: Ports, handler: OutboxHandler, options: RunnerOptions = {}): OutboxRunner & { start(): void } {
  const batchSize = options.batchSize ?? 100;
  const leaseMs = options.leaseMs ?? 60_000;
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const backoffMs = options.backoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;
  const owner = options.owner ?? leaseOwner();
  const log = options.log ?? quiet;
  const metrics = options.metrics;
  const { topic } = handler;

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wakeUp: (() => void) | undefined;
  let idle = false; // sleeping for idleMs: the last claim found less than a batch
  let loop: Promise<void> | undefined;
  let failures = 0;
  let pauseUntil = 0; // flow control, or the handler's notBefore

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wakeUp = () => {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      };
      timer = setTimeout(() => wakeUp?.(), ms);
    });

  async function runOnce(): Promise<number> {
    const wait = handler.notBefore?.(true) ?? 0;
    if (wait > 0) {
      pauseUntil = Math.max(pauseUntil, Date.now() + wait);
      return 0;
    }
    const now = ports.clock.now();
    // A read first: claiming is a write transaction, which an idle poll should not cost.
    if (!(await ports.store.read.outbox.hasDue(topic, shanghaiTimestamp(now)))) return 0;
    const until = new Date(now.getTime() + leaseMs);
    const jobs = await ports.store.write((tx) =>
      tx.outbox.claim({ topic, owner, now: shanghaiTimestamp(now), leaseUntil: shanghaiTimestamp(until), limit: batchSize }),
    );
    if (jobs.length === 0) return 0;
    let result: BatchResult;
    try {
      result = await handler.handle(jobs, { owner, until });
    } catch (error) {
      await giveBack(jobs.map((job) => ({ id: job.id, delayMs: backoffDelay(job.attempts, backoffMs, maxBackoffMs) })), jobs);
      throw error;
    }
    const retry = result.retry ?? [];
    await settle(result.done ?? [], retry, jobs);
    metrics?.count(topic, 'done', result.done?.length ?? 0);
    metrics?.count(topic, 'retry', retry.length);
    metrics?.count(topic, 'handled', jobs.length - (result.done?.length ?? 0) - retry.length);
    if (result.pauseMs && result.pauseMs > 0) pauseUntil = Date.now() + result.pauseMs;
    if (result.failure !== undefined) throw new SettledFailure(result.failure);
    return jobs.length;
  }

  async function settle(done: number[], retry: Array<{ id: number; delayMs?: number }>, jobs: OutboxJob[]): Promise<void> {
    if (done.length === 0 && retry.length === 0) return;
    const at = ports.clock.now();
    const attempts = new Map(jobs.map((job) => [job.id, job.attempts]));
    await ports.store.write(async (tx) => {
      for (const id of done) await tx.outbox.complete(id, owner, shanghaiTimestamp(at));
      for (const { id, delayMs } of retry) {
        const delay = delayMs ?? backoffDelay(attempts.get(id) ?? 1, backoffMs, maxBackoffMs);
        await tx.outbox.release(id, owner, shanghaiTimestamp(new Date(at.getTime() + delay)));
      }
    });
  }

  async function giveBack(retry: Array<{ id: number; delayMs: number }>, jobs: OutboxJob[]): Promise<void> {
    try {
      await settle([], retry, jobs);
    } catch (error) {
      // The leases run out by themselves; the jobs are claimed again then.
      log.warn({ topic, err: error, code: faultCode(error) }, 'outbox: could not give jobs back; their leases will expire');
    }
  }


  async function run(): Promise<void> {
    while (!stopping) {
      const paused = pauseUntil - Date.now();
      if (paused > 0) {
        await sleep(paused);
        continue;
      }
      let claimed = 0;
      try {
        claimed = await runOnce();
        if (failures > 0) log.info({ topic, after: failures }, 'outbox: working again');
        failures = 0;
      } catch (thrown) {
        failures += 1;
        const error = thrown instanceof SettledFailure ? thrown.failure : thrown;
        const code = faultCode(error);
        metrics?.count(topic, 'error', 1, code);
        log.warn({ topic, err: error, code, failures }, 'outbox: batch failed; backing off');
        // While the handler says when to try again (its service's circuit is open) that is the
        // spacing: a backoff grown over a long outage on top of it would only delay noticing that
        // the service is back, by up to maxBackoffMs.
        const wait = handler.notBefore?.(false) ?? 0;
        if (!stopping) await sleep(wait > 0 ? wait : backoffDelay(failures, backoffMs, maxBackoffMs));
        continue;
      }
      // A full batch means more is probably waiting: go on at once (after letting others run).
      // Otherwise look again after the poll interval or, while a pause is set, when it ends: a lane
      // held back 50 ms for another lane's probe used to sleep the whole interval on top of it.
      if (claimed >= batchSize) await new Promise((resolve) => setImmediate(resolve));
      else if (!stopping) {
        idle = pauseUntil <= Date.now();
        await sleep(idle ? idleMs : pauseUntil - Date.now());
        idle = false;
      }
    }
  }

  return {
    owner,
    start() {
      loop ??= run();
    },
    wake() {
      wakeUp?.(); // a flow-control pause still holds: the loop goes back to sleep until it ends
    },
    wakeIfIdle() {
      if (idle) wakeUp?.();
    },
    runOnce,
    async stop() {
      stopping = true;
      wakeUp?.();
      await loop;
    },
  };
}

/** A failure the handler reported after settling its jobs itself. */
class SettledFailure extends Error {
  constructor(readonly failure: unknown) {
    super('batch failed');
  }
}

function faultCode(error: unknown): number | undefined {
  return error instanceof Fault ? error.spec.code : undefined;
}
