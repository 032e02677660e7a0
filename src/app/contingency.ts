// 离线开票 in the application: the check inside the issue transaction, the merchant's connection
// state (online / contingency) as the upload worker finds it, the 80 % warnings, and the status
// a merchant sees (GET /api/v1/status), with the month's credit line.
import { authorize, type Caller } from '../domain/access.js';
import { assess, limitsFor, refuseIssue, type Backlog, type KindAssessment } from '../domain/contingency.js';
import { effectiveCreditLine, type CreditLimits } from '../domain/credit-line.js';
import { Fault, faults } from '../domain/faults.js';
import { invoiceKinds, type InvoiceKind } from '../domain/invoice.js';
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import { raiseAlert } from './alerts.js';
import { monthPeriod } from './issue-allowance.js';
import type { MerchantRecord, Ports, Repositories } from './ports.js';
import type { BacklogRow, UpstreamState } from './upload-ports.js';

/**
 * Inside the issue transaction, with the kind's upload backlog as it is before this invoice: while
 * the merchant is in contingency, the contingency fault when one more invoice would pass a limit.
 */
export function refuseOfflineIssue(merchant: MerchantRecord, kind: InvoiceKind, before: Backlog, preTaxFen: bigint, now: Date): Fault | undefined {
  // Online, the backlog is only the uploads in flight: the offline limits are for offline issuing.
  if (!merchant.offlineSince) return undefined;
  return refuseIssue(limitsFor(merchant.contingency, kind), before, preTaxFen, now);
}

/**
 * How long a contingency episode lasts before `contingency.started` is raised. The mode changes at
 * the first failed round, so the offline limits bind at once; the alert (and the notifications sent
 * from it) waits, so that one failed round among successes (a 5xx now and then) does not raise a
 * started/ended pair each time. A longer outage is told about at the merchant's next round with the
 * tax service after that (its retried uploads or voids, once the circuit lets them go; a top-up; the
 * terms refresh, at least every ten minutes), which notes the failure again.
 */
export const CONTINGENCY_ALERT_AFTER_MS = 60_000;

/** The worker reached the tax service: back online if the merchant was in contingency. */
export async function markOnline(tx: Repositories, merchantId: string, at: string, known?: UpstreamState): Promise<UpstreamState> {
  const current = known ?? (await tx.upstreamState.get(merchantId));
  // Already online: note the success at most every few seconds, not on every slice of every batch.
  if (current?.mode === 'online' && current.lastError === null && current.lastSuccessAt && Date.parse(at) - Date.parse(current.lastSuccessAt) < 5_000) return current;
  const next: UpstreamState = current?.mode === 'online'
    ? { ...current, lastSuccessAt: at, lastError: null }
    : { merchantId, mode: 'online', since: at, lastError: null, lastSuccessAt: at, warnedAt: null, alertedAt: null };
  await tx.upstreamState.put(next);
  // An episode nobody was told of ends as quietly.
  if (current?.mode === 'contingency' && current.alertedAt) {
    await raiseAlert(tx, { merchantId, kind: 'contingency.ended', severity: 'info', subject: merchantId, detail: { since: current.since }, at });
  }
  return next;
}

/**
 * The worker could not reach the tax service: contingency from now on (or still, since earlier),
 * and once the episode has lasted CONTINGENCY_ALERT_AFTER_MS, its one `contingency.started` alert.
 */
export async function markUnreachable(tx: Repositories, merchantId: string, at: string, error: string): Promise<UpstreamState> {
  const current = await tx.upstreamState.get(merchantId);
  if (current?.mode !== 'contingency') {
    const next: UpstreamState = { merchantId, mode: 'contingency', since: at, lastError: error, lastSuccessAt: current?.lastSuccessAt ?? null, warnedAt: null, alertedAt: null };
    await tx.upstreamState.put(next);
    return next;
  }
  return stillInContingency(tx, current, at, error);
}

/**
 * The tax service answered with a refusal (a signature, enrolment or a request it will not take):
 * no outage, so the mode stays as it is, but the status says what stops the uploads. An episode of
 * contingency goes on, and is told of once it has lasted, as after a failure.
 */
export async function noteRefusal(tx: Repositories, merchantId: string, at: string, error: string): Promise<void> {
  const current = await tx.upstreamState.get(merchantId);
  if (current?.mode === 'contingency') return void (await stillInContingency(tx, current, at, error));
  if (current?.lastError === error) return;
  await tx.upstreamState.put(current ? { ...current, lastError: error } : { merchantId, mode: 'online', since: at, lastError: error, lastSuccessAt: null, warnedAt: null, alertedAt: null });
}

async function stillInContingency(tx: Repositories, current: UpstreamState, at: string, error: string): Promise<UpstreamState> {
  const alert = !current.alertedAt && Date.parse(at) - Date.parse(current.since) >= CONTINGENCY_ALERT_AFTER_MS;
  const next = { ...current, lastError: error, ...(alert && { alertedAt: at }) };
  if (alert || current.lastError !== error) await tx.upstreamState.put(next);
  if (alert) await raiseAlert(tx, { merchantId: current.merchantId, kind: 'contingency.started', severity: 'warning', subject: current.merchantId, detail: { since: current.since, error }, at });
  return next;
}

/**
 * Raises one alert per contingency episode when a kind's backlog passes 80 % of a limit (R41:
 * before issuing stops). Runs in the background; the issue path never waits for it.
 */
export async function warnNearLimits(ports: Ports, merchant: MerchantRecord): Promise<KindAssessment[]> {
  const current = await ports.store.read.merchants.get(merchant.id);
  if (!merchant.contingency?.length || !current?.offlineSince) return []; // the limits bind only offline
  const now = ports.clock.now();
  const backlog = await ports.store.read.uploads.backlog(merchant.id);
  const assessments = assessAll(merchant, backlog, now);
  const near = assessments.filter((a) => a.warning);
  if (near.length === 0) return assessments;
  await ports.store.write(async (tx) => {
    // Under the lock every change of the state takes: what was read above may be a moment old, and
    // the merchant back online since (no warning then, and never a stale mode written back).
    await tx.merchants.hold(merchant.id);
    const state = await tx.upstreamState.get(merchant.id);
    if (state?.mode !== 'contingency' || state.warnedAt) return;
    const at = shanghaiTimestamp(now);
    await tx.upstreamState.put({ ...state, warnedAt: at });
    await raiseAlert(tx, {
      merchantId: merchant.id, kind: 'contingency.limit_near', severity: near.some((a) => a.blocked) ? 'critical' : 'warning', subject: merchant.id, at,
      detail: Object.fromEntries(near.map((a) => [a.kind, { hoursRatio: round(a.hours.ratio), amountRatio: round(a.amount.ratio), blocked: a.blocked }])),
    });
  });
  return assessments;
}

function assessAll(merchant: MerchantRecord, backlog: readonly BacklogRow[], now: Date): KindAssessment[] {
  return invoiceKinds.flatMap((kind) => {
    const limits = limitsFor(merchant.contingency, kind);
    const row = backlog.find((b) => b.kind === kind);
    return limits && row ? [assess(limits, row, now)] : [];
  });
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export interface MerchantStatus {
  merchantId: string;
  mode: 'online' | 'contingency';
  since: string | null;
  lastError: string | null;
  lastSuccessAt: string | null;
  termsFetchedAt: string | null;
  backlog: { count: number; preTaxFen: bigint; oldestAt: string | null; oldestAgeHours: number; byKind: BacklogRow[] };
  limits: Array<KindAssessment & { maxOfflineAmountFen: bigint; unlock: string }>;
  numbers: { year: number; remaining: number; blocks: number };
  problems: { rejected: number; quarantined: number };
  /** The month's credit line (授信额度, R9): both sources, what this month used and what is left. */
  credit: CreditLimits & { month: string; usedFen: bigint; remainingFen: bigint | null };
  /** Voids not yet reported to the tax service, and voids it refused. */
  voids: { pending: number; refused: number };
}

export async function merchantStatus(ports: Ports, caller: Caller): Promise<MerchantStatus> {
  authorize(caller, 'merchant.read');
  const read = ports.store.read;
  const merchant = await read.merchants.get(caller.merchantId);
  if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: caller.merchantId });
  const now = ports.clock.now();
  const today = shanghaiDate(now);
  const year = Number(today.slice(0, 4));
  const [state, backlog, numbers, problems, month, voids] = await Promise.all([
    read.upstreamState.get(merchant.id),
    read.uploads.backlog(merchant.id),
    read.numberBlocks.reserve(merchant.id, year),
    read.uploads.countProblems(merchant.id),
    read.usage.get(merchant.id, monthPeriod(today)),
    read.voids.open(merchant.id),
  ]);
  const line = effectiveCreditLine(merchant);
  const pending = backlog.filter((b) => b.count > 0);
  const oldestAt = pending.map((b) => b.oldestAt).filter((t): t is string => t !== null).sort()[0] ?? null;
  const limits = invoiceKinds.flatMap((kind) => {
    const l = limitsFor(merchant.contingency, kind);
    if (!l) return [];
    const assessed = assess(l, backlog.find((b) => b.kind === kind)!, now);
    // Online, the backlog is uploads in flight: the limits are shown but bind only offline.
    const a = merchant.offlineSince ? assessed : { ...assessed, blocked: false, hours: { ...assessed.hours, reached: false }, amount: { ...assessed.amount, reached: false } };
    const unlock = a.hours.reached
      ? 'Upload the oldest offline invoices: restore the connection to the tax service; issuing unlocks by itself once they are uploaded.'
      : a.amount.reached
        ? 'Upload the offline invoices: restore the connection to the tax service; the amount frees itself as they are uploaded.'
        : '';
    return [{ ...a, maxOfflineAmountFen: l.maxOfflineAmountFen, unlock }];
  });
  return {
    merchantId: merchant.id,
    mode: state?.mode ?? 'online',
    since: state?.since ?? null,
    lastError: state?.lastError ?? null,
    lastSuccessAt: state?.lastSuccessAt ?? null,
    termsFetchedAt: merchant.termsFetchedAt ?? null,
    backlog: {
      count: pending.reduce((n, b) => n + b.count, 0),
      preTaxFen: pending.reduce((n, b) => n + b.preTaxFen, 0n),
      oldestAt,
      oldestAgeHours: oldestAt === null ? 0 : Math.max(0, (now.getTime() - Date.parse(oldestAt)) / 3_600_000),
      byKind: backlog,
    },
    limits,
    numbers: { year, ...numbers },
    problems,
    credit: {
      grantedCreditFen: merchant.grantedCreditFen, operatorCreditFen: merchant.operatorCreditFen, month: today.slice(0, 7), usedFen: month.preTaxFen,
      remainingFen: line && (line.limitFen > month.preTaxFen ? line.limitFen - month.preTaxFen : 0n),
    },
    voids,
  };
}
