// What the outbox consumers that call the tax service share (the upload worker, the void worker):
// how a failed call is judged (processed or certainly not), the pause the circuit breaker or flow
// control asks for, the merchant's connection state after a round, and the bookkeeping of a round's
// audit entries.
import { auditScope } from '../domain/audit-chain.js';
import { Fault, faults } from '../domain/faults.js';
import { refusedByCircuit, UpstreamFault, type TaxServiceClient } from '../upstream/client.js';
import type { TaxService } from '../upstream/protocol.js';
import { appendAudit, type AuditRecord } from './audit.js';
import { markOnline, markUnreachable, noteRefusal } from './contingency.js';
import { backoffDelay, type BatchResult } from './outbox-runner.js';
import type { MerchantRecord, OutboxJob, Ports, Repositories } from './ports.js';

/** How often a lane looks again while another lane's probe decides whether the service is back. */
const PROBE_POLL_MS = 50;

/**
 * A lane pauses this long at most for one seller's flow-control wait, whether a submission was
 * answered with it or refused for it: the client holds that seller's next submission until the wait
 * ends (flow-gate.ts), and the lane meanwhile serves other sellers. Paused for the whole wait (a
 * minute, say), every lane that met a wait would stand still, so that sellers each answered with
 * waits would get a submission a minute per lane between them all.
 */
const FLOW_PAUSE_MAX_MS = 1_000;

/** Errors after which the tax service certainly did not process the request. */
const NOT_PROCESSED = new Set<number>([
  faults.UPSTREAM_CIRCUIT_OPEN.code, faults.UPSTREAM_SERVER_ERROR.code, faults.UPSTREAM_FLOW_CONTROL.code, faults.UPSTREAM_SIGNATURE_REFUSED.code,
  faults.UPSTREAM_NOT_ENROLLED.code, faults.UPSTREAM_REQUEST_REFUSED.code,
]);

export function certainlyNotProcessed(error: unknown): boolean {
  if (error instanceof UpstreamFault) return !error.maybeCommitted;
  if (!(error instanceof Fault)) return false;
  if (NOT_PROCESSED.has(error.spec.code)) return true;
  // Refused before anything was sent (the client says so); a reset mid-request stays unknown.
  return error.spec.code === faults.UPSTREAM_UNREACHABLE.code && error.params.sent !== 'true';
}

/** "<code> <message>" of a fault, for the merchant's connection state and the logs. */
function describeFailure(error: unknown): string {
  if (error instanceof Fault) return `${error.spec.code} ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** The pause flow control asks for (ms); 0 for any other failure. */
function flowPauseMs(error: unknown): number {
  if (error instanceof Fault && error.spec.code === faults.UPSTREAM_FLOW_CONTROL.code) return Number(error.params.seconds ?? 1) * 1000;
  return 0;
}

/**
 * When jobs a round gives back are due again (ms from now): after the pause flow control asked for
 * and the backoff for their attempts. A round the circuit refused reached nobody: no backoff, the
 * lanes wait for the probe instead.
 */
export function retryDelayMs(error: unknown, attempts: number, backoff: { backoffMs: number; maxBackoffMs: number }): number {
  const flowPause = flowPauseMs(error);
  if (flowPause > 0) return flowPause; // the tax service named the wait: a backoff on top would only delay
  return refusedByCircuit(error) ? 0 : backoffDelay(attempts, backoff.backoffMs, backoff.maxBackoffMs);
}

/**
 * What a failed call says of reaching the tax service: a refusal (a signature, enrolment, a request
 * it will not take) and a flow-control wait are answers, not an outage. A wait taken for one put the
 * merchant in contingency, with an alert, whenever a second upload lane met the wait another lane
 * had been given.
 */
const REFUSALS = new Set<number>([faults.UPSTREAM_SIGNATURE_REFUSED.code, faults.UPSTREAM_NOT_ENROLLED.code, faults.UPSTREAM_REQUEST_REFUSED.code]);

/**
 * After a round with the tax service, inside its transaction (which holds the merchant's lock):
 * online again when it answered; in contingency when it could not be reached; after a refusal the
 * mode stays and the status says why nothing uploads; a flow-control wait changes nothing.
 */
export async function noteReach(tx: Repositories, merchantId: string, at: string, error?: unknown): Promise<void> {
  if (error === undefined) return void (await markOnline(tx, merchantId, at));
  const code = error instanceof Fault ? error.spec.code : undefined;
  if (code === faults.UPSTREAM_FLOW_CONTROL.code) return;
  if (code !== undefined && REFUSALS.has(code)) await noteRefusal(tx, merchantId, at, describeFailure(error));
  else await markUnreachable(tx, merchantId, at, describeFailure(error));
}

/** Appends a round's audit entries to the merchant's audit chain (nothing when there are none). */
export async function appendAuditEntries(tx: Repositories, merchantId: string, at: string, entries: readonly AuditRecord[]): Promise<void> {
  if (entries.length === 0) return;
  const [head] = await tx.chain.heads([auditScope(merchantId)]);
  await tx.chain.advance([await appendAudit(tx, at, entries, head!)]);
}

/**
 * A handler's `notBefore`, shared by its lanes: while the client's circuit is open every call would
 * fail at once, so claim nothing until its probe; while the probe is out, wait for its answer. Once
 * the circuit is half-open, one of the handler's lanes claims the batch that carries the probe and
 * the others wait: the lanes' sleeps all end at the same retry time, and every one of them used to
 * claim a batch then, all but one to have it refused by the circuit and give it back (two write
 * transactions for nothing each, every probe interval of an outage). The lane given the turn holds
 * it until a call goes out, or for PROBE_TURN_MS if none does (it found no work). The turn is the
 * handler's own: another handler's lane that found no work must not hold this one's lanes back.
 */
export function circuitNotBefore(taxService: TaxService, now: () => number = Date.now): (claiming: boolean) => number {
  let turn: { halfOpenSince: number; until: number } | undefined;
  return (claiming) => {
    const circuit = (taxService as Partial<TaxServiceClient>).circuit?.();
    if (circuit?.state === 'open' && circuit.retryAt) return Math.max(0, circuit.retryAt - now());
    if (circuit?.state !== 'half_open') return 0;
    if (circuit.probeInFlight || (turn?.halfOpenSince === circuit.since && now() < turn.until)) return PROBE_POLL_MS;
    if (claiming) turn = { halfOpenSince: circuit.since, until: now() + PROBE_TURN_MS };
    return 0;
  };
}

/** How long the lane given the probe's turn may take to send it before another lane may. */
const PROBE_TURN_MS = 1_000;

/** The merchants of a worker's jobs, read once per process (taxpayer IDs do not change). */
export function merchantCache(ports: Ports): (id: string) => Promise<MerchantRecord | undefined> {
  const merchants = new Map<string, MerchantRecord>();
  return async (id) => {
    let m = merchants.get(id);
    if (!m) {
      m = await ports.store.read.merchants.get(id);
      if (m) merchants.set(id, m);
    }
    return m;
  };
}

/**
 * Works a claimed batch group by group (a seller's jobs, or a submission of them), each on its own:
 * a group that fails has given its jobs back itself, the others still run, and the first failure
 * goes to the runner, which backs the loop off. `work` returns the pause the tax service asked for (ms).
 *
 * A group refused by the client's circuit (another lane's or the upkeep's probe was out, or the
 * circuit opened meanwhile) reached nobody: it is a short pause, not a failure. As a failure it
 * made the runner back off by the failures of the whole outage, so a lane that lost the race for
 * the probe slept up to FAPIAO_UPLOAD_MAX_BACKOFF_MS (a minute by default) after the service was
 * back, and the backlog drained on the other lanes alone. A group refused for flow control (by the
 * tax service, or by the client keeping a wait it was given) is not a failure either: its jobs are
 * due again when the wait ends. For a wait, answered or refused, the lane pauses FLOW_PAUSE_MAX_MS
 * at most, since the wait is that seller's only.
 */
export async function eachGroup(groups: Iterable<[string, OutboxJob[]]>, work: (merchantId: string, jobs: OutboxJob[]) => Promise<number>): Promise<BatchResult> {
  let pauseMs = 0;
  let failure: unknown;
  for (const [merchantId, jobs] of groups) {
    try {
      pauseMs = Math.max(pauseMs, await work(merchantId, jobs));
    } catch (error) {
      const flowPause = flowPauseMs(error);
      if (refusedByCircuit(error)) pauseMs = Math.max(pauseMs, PROBE_POLL_MS);
      else if (flowPause > 0) pauseMs = Math.max(pauseMs, flowPause);
      else failure ??= error;
    }
  }
  return { pauseMs: Math.min(pauseMs, FLOW_PAUSE_MAX_MS), ...(failure !== undefined && { failure }) };
}

/** A claimed batch per merchant (seller), in claim order. */
export function byMerchant(jobs: readonly OutboxJob[]): Map<string, OutboxJob[]> {
  const groups = new Map<string, OutboxJob[]>();
  for (const job of jobs) {
    const group = groups.get(job.merchantId);
    if (group) group.push(job);
    else groups.set(job.merchantId, [job]);
  }
  return groups;
}
