// What a merchant may still issue, inside the issue transaction: the daily count limit (开票限额),
// the month's credit line (授信额度, R9: the lower of the tax service's grant and the operator's
// limit) and, in contingency, the offline limits of each kind's
// upload backlog. Read once for a batch and kept up to date invoice by invoice, so a batch never
// overshoots a limit its invoices would pass one at a time, and the usage counters get the batch's
// totals in one statement.
import { backlogPeriod, type Backlog } from '../domain/contingency.js';
import { effectiveCreditLine, refuseCredit } from '../domain/credit-line.js';
import { Fault, faults } from '../domain/faults.js';
import type { InvoiceKind } from '../domain/invoice.js';
import { refuseOfflineIssue } from './contingency.js';
import type { MerchantRecord, Repositories, UsageChange, UsageCounters } from './ports.js';

export const dayPeriod = (date: string) => `D${date}`;
export const monthPeriod = (date: string) => `M${date.slice(0, 7)}`;

export class IssueAllowance {
  private issuedToday: number;
  private monthFen: bigint;
  private readonly added = new Map<InvoiceKind, { invoiceCount: number; preTaxFen: bigint }>();

  private constructor(
    private readonly merchant: MerchantRecord,
    private readonly date: string,
    private readonly now: Date,
    today: UsageCounters | undefined,
    month: UsageCounters | undefined,
    private readonly backlogs: Map<InvoiceKind, Backlog>,
  ) {
    this.issuedToday = today?.invoiceCount ?? 0;
    this.monthFen = month?.preTaxFen ?? 0n;
  }

  /** Reads only the counters this merchant's limits need. `date` is today in Shanghai. */
  static async open(tx: Repositories, merchant: MerchantRecord, date: string, kinds: ReadonlySet<InvoiceKind>, now: Date): Promise<IssueAllowance> {
    const today = merchant.dailyInvoiceLimit !== null ? await tx.usage.get(merchant.id, dayPeriod(date)) : undefined;
    const month = effectiveCreditLine(merchant) !== null ? await tx.usage.get(merchant.id, monthPeriod(date)) : undefined;
    const backlogs = new Map<InvoiceKind, Backlog>();
    if (merchant.offlineSince) {
      for (const kind of kinds) {
        const counters = await tx.usage.get(merchant.id, backlogPeriod(kind));
        backlogs.set(kind, { count: counters.invoiceCount, preTaxFen: counters.preTaxFen, oldestAt: counters.invoiceCount > 0 ? counters.since : null });
      }
    }
    return new IssueAllowance(merchant, date, now, today, month, backlogs);
  }

  /** Why one more invoice of this kind and pre-tax amount may not be issued; undefined when it may. */
  refusal(kind: InvoiceKind, preTaxFen: bigint): Fault | undefined {
    const { dailyInvoiceLimit } = this.merchant;
    if (dailyInvoiceLimit !== null && this.issuedToday >= dailyInvoiceLimit) {
      return new Fault(faults.DAILY_LIMIT_REACHED, { limit: String(dailyInvoiceLimit) });
    }
    const overCredit = refuseCredit(this.merchant, this.monthFen, preTaxFen);
    if (overCredit) return overCredit;
    const backlog = this.backlogs.get(kind);
    return backlog && refuseOfflineIssue(this.merchant, kind, backlog, preTaxFen, this.now);
  }

  /** Counts an invoice that will be stored. */
  add(kind: InvoiceKind, preTaxFen: bigint, issuedAt: string): void {
    this.issuedToday += 1;
    this.monthFen += preTaxFen;
    const backlog = this.backlogs.get(kind);
    if (backlog) this.backlogs.set(kind, { count: backlog.count + 1, preTaxFen: backlog.preTaxFen + preTaxFen, oldestAt: backlog.oldestAt ?? issuedAt });
    const added = this.added.get(kind) ?? { invoiceCount: 0, preTaxFen: 0n };
    this.added.set(kind, { invoiceCount: added.invoiceCount + 1, preTaxFen: added.preTaxFen + preTaxFen });
  }

  /** The counters to add for what was counted: the day, the month, and each kind's upload backlog. */
  changes(): UsageChange[] {
    const all = [...this.added.values()];
    const total = { invoiceCount: all.reduce((n, a) => n + a.invoiceCount, 0), preTaxFen: all.reduce((fen, a) => fen + a.preTaxFen, 0n) };
    if (total.invoiceCount === 0) return [];
    return [
      { period: dayPeriod(this.date), ...total },
      { period: monthPeriod(this.date), ...total },
      ...[...this.added].map(([kind, added]) => ({ period: backlogPeriod(kind), ...added })),
    ];
  }
}
