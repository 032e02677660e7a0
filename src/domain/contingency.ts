// 离线开票 (contingency): while invoices wait to be uploaded, issuing goes on within two limits per
// invoice kind, as the Golden Tax rules had them and the tax service's terms set them:
//   离线开票时限 — hours since the oldest invoice not yet uploaded;
//   离线开票限额 — the pre-tax total of the invoices not yet uploaded.
// Beyond a limit, issuing that kind stops until the backlog is uploaded; at 80 % of either, a
// warning. Pure rules: the caller supplies the backlog and the time.
import { bilingual, Fault, faults, type Bilingual } from './faults.js';
import type { InvoiceKind } from './invoice.js';
import { formatYuan } from './money.js';

export const WARNING_RATIO = 0.8;

export interface ContingencyLimits {
  kind: InvoiceKind;
  maxOfflineHours: number;
  maxOfflineAmountFen: bigint;
}

/** The un-uploaded invoices of one kind. */
export interface Backlog {
  count: number;
  preTaxFen: bigint;
  /** Issue time (Shanghai timestamp) of the oldest one; null when there is none. */
  oldestAt: string | null;
}

export const EMPTY_BACKLOG: Backlog = { count: 0, preTaxFen: 0n, oldestAt: null };

export interface LimitUse {
  limit: 'hours' | 'amount';
  used: number; // hours (fractional) or fen
  max: number;
  ratio: number;
  warning: boolean; // at or past 80 %
  reached: boolean; // issuing this kind is refused
}

export interface KindAssessment {
  kind: InvoiceKind;
  hours: LimitUse;
  amount: LimitUse;
  blocked: boolean;
  warning: boolean;
}

const KIND_WORDS: Record<InvoiceKind, Bilingual> = { normal: bilingual('普通发票', 'normal'), special: bilingual('增值税专用发票', 'special') };

export function hoursSince(at: string | null, now: Date): number {
  if (at === null) return 0;
  return Math.max(0, (now.getTime() - Date.parse(at)) / 3_600_000);
}

/**
 * Where a kind's backlog stands against its limits. The hours limit is reached once the oldest
 * un-uploaded invoice is MORE than maxOfflineHours old; the amount limit once the backlog is AT the
 * maximum (nothing more fits; see `refuseIssue` for the exact rule on one more invoice).
 */
export function assess(limits: ContingencyLimits, backlog: Backlog, now: Date): KindAssessment {
  const hoursUsed = hoursSince(backlog.oldestAt, now);
  const maxFen = Number(limits.maxOfflineAmountFen);
  const fenUsed = Number(backlog.preTaxFen);
  const hours: LimitUse = {
    limit: 'hours', used: hoursUsed, max: limits.maxOfflineHours, ratio: ratio(hoursUsed, limits.maxOfflineHours),
    warning: hoursUsed >= WARNING_RATIO * limits.maxOfflineHours, reached: hoursUsed > limits.maxOfflineHours,
  };
  const amount: LimitUse = {
    limit: 'amount', used: fenUsed, max: maxFen, ratio: ratio(fenUsed, maxFen),
    warning: backlog.preTaxFen * 10n >= limits.maxOfflineAmountFen * 8n, reached: backlog.preTaxFen >= limits.maxOfflineAmountFen,
  };
  return { kind: limits.kind, hours, amount, blocked: hours.reached || amount.reached, warning: hours.warning || amount.warning };
}

/**
 * Decides whether one more invoice of `preTaxFen` may be issued on top of `before` (the backlog
 * without it). Accepted exactly while the oldest is at most maxOfflineHours old and the backlog
 * including this invoice is at most the maximum amount; otherwise the fault says which limit and
 * what unlocks it.
 */
export function refuseIssue(limits: ContingencyLimits | undefined, before: Backlog, preTaxFen: bigint, now: Date): Fault | undefined {
  if (!limits) return undefined;
  const hours = hoursSince(before.oldestAt, now);
  if (before.oldestAt !== null && hours > limits.maxOfflineHours) {
    return new Fault(
      faults.CONTINGENCY_HOURS_EXCEEDED,
      // Rounded up: "72.0 h (limit 72 h)" would read as no reason to refuse.
      { kind: KIND_WORDS[limits.kind], hours: (Math.ceil(hours * 10) / 10).toFixed(1), max: String(limits.maxOfflineHours) },
      [],
      60,
    );
  }
  if (before.preTaxFen + preTaxFen > limits.maxOfflineAmountFen) {
    return new Fault(
      faults.CONTINGENCY_AMOUNT_EXCEEDED,
      { kind: KIND_WORDS[limits.kind], pending: formatYuan(before.preTaxFen), amount: formatYuan(preTaxFen), max: formatYuan(limits.maxOfflineAmountFen) },
      [],
      60,
    );
  }
  return undefined;
}

export function limitsFor(all: readonly ContingencyLimits[] | null | undefined, kind: InvoiceKind): ContingencyLimits | undefined {
  return all?.find((l) => l.kind === kind);
}

/** The usage period that holds a kind's backlog counters. */
export const backlogPeriod = (kind: InvoiceKind) => `B${kind}`;

function ratio(used: number, max: number): number {
  if (max <= 0) return used > 0 ? Infinity : 0;
  return used / max;
}

/** Stored terms (JSON) → limits; fen travel as strings. */
export function parseContingencyTerms(json: string | null): ContingencyLimits[] | null {
  if (json === null) return null;
  const raw = JSON.parse(json) as Array<{ kind: InvoiceKind; maxOfflineHours: number; maxOfflineAmountFen: string }>;
  return raw.map((l) => ({ kind: l.kind, maxOfflineHours: l.maxOfflineHours, maxOfflineAmountFen: BigInt(l.maxOfflineAmountFen) }));
}

export function serializeContingencyTerms(limits: readonly ContingencyLimits[]): string {
  return JSON.stringify(limits.map((l) => ({ kind: l.kind, maxOfflineHours: l.maxOfflineHours, maxOfflineAmountFen: l.maxOfflineAmountFen.toString() })));
}
