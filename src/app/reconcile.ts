// 对账 (R31): one merchant's invoices of one issue date, ours against the tax service's list of
// what it accepted. Differences are recorded with the report, one alert is raised when there are
// any, and each difference is resolved by a person: uploaded again (a new 'invoice.upload' job) or
// marked investigated with a note. The network calls happen before the one transaction that
// stores the report; none is held open across them.
import { randomUUID } from 'node:crypto';
import { authorize, type Caller } from '../domain/access.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import type { Invoice } from '../domain/invoice.js';
import { backlogPeriod } from '../domain/contingency.js';
import { parseCalendarDate, shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import { uploadState } from '../domain/void-report.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TaxService } from '../upstream/protocol.js';
import { raiseAlert } from './alerts.js';
import { recordAudit } from './audit.js';
import type { Ports, Repositories } from './ports.js';
import { enqueueUploads } from './upload-record.js';
import type { ReconciliationItem, ReconciliationReport } from './upstream-ports.js';
import { enqueueVoid } from './void-worker.js';

export interface ReconcilePorts extends Ports {
  taxService: TaxService;
}

export interface ReconciliationResult {
  report: ReconciliationReport;
  items: ReconciliationItem[];
}

type NewItem = Omit<ReconciliationItem, 'id' | 'reconciliationId' | 'resolution' | 'resolvedAt' | 'resolvedBy' | 'note'>;

const LOCAL_PAGE = 1000;
/** How a difference was resolved, as a Chinese sentence ends: 已由 … 于 … 重新上传. */
const RESOLUTION_ZH: Record<string, string> = { reuploaded: '重新上传', investigated: '标记为已调查' };

export function checkReconcileDate(text: string, today: string): string {
  const date = parseCalendarDate(text);
  if (!date || date > today) throw new Fault(faults.RECONCILE_DATE_INVALID, { date: text.slice(0, 40) }, [{ field: 'date', issue: 'YYYY-MM-DD, not after today (Asia/Shanghai)' }]);
  return date;
}

export async function reconcile(ports: ReconcilePorts, caller: Caller, dateText: string): Promise<ReconciliationResult> {
  authorize(caller, 'ops.read');
  const date = checkReconcileDate(dateText, shanghaiDate(ports.clock.now()));
  const merchant = await ports.store.read.merchants.get(caller.merchantId);
  if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: caller.merchantId });

  const local = await localInvoices(ports, merchant.id, date);
  const upstream = new Map<string, string>();
  for (let cursor: string | undefined; ;) {
    const page = await ports.taxService.acceptedOn(merchant.taxId, date, cursor);
    for (const i of page.invoices) upstream.set(i.number, i.digest);
    if (!page.next || page.invoices.length === 0) break;
    cursor = page.next;
  }

  const items: NewItem[] = [];
  let matched = 0;
  let pending = 0;
  // An upload problem the invoice's status does not show (one voided meanwhile and then rejected, or
  // quarantined) is in its own record: read once, not per invoice (a day after an outage may have
  // thousands still on their way).
  const problems = await ports.store.read.uploads.problemNumbers(merchant.id);
  for (const invoice of local.values()) {
    const held = upstream.get(invoice.number);
    const base = { number: invoice.number, localDigest: invoice.digest, localStatus: invoice.status };
    if (held === undefined) {
      const upload = uploadState(invoice); // a voided invoice's upload too: it is uploaded before its void
      if (upload === 'uploaded') items.push({ ...base, difference: 'missing_upstream', upstreamDigest: null });
      else if (upload === 'pending' && !problems.has(invoice.number)) pending += 1; // still in the upload queue
      // rejected: the tax service rightly does not hold it
    } else if (held !== invoice.digest) items.push({ ...base, difference: 'digest_mismatch', upstreamDigest: held });
    else matched += 1;
  }
  for (const [number, digest] of upstream) {
    if (!local.has(number)) items.push({ number, difference: 'missing_locally', localDigest: null, upstreamDigest: digest, localStatus: null });
  }
  items.sort((a, b) => a.number.localeCompare(b.number));

  const at = shanghaiTimestamp(ports.clock.now());
  const report: ReconciliationReport = {
    id: `rec_${randomUUID()}`, merchantId: merchant.id, date, ranAt: at, actor: caller.actor,
    localCount: local.size, upstreamCount: upstream.size, matched, pending, differences: items.length,
  };
  await ports.store.write(async (tx) => {
    await tx.reconciliations.insert(report, items);
    if (items.length > 0) {
      const count = (d: string) => items.filter((i) => i.difference === d).length;
      await raiseAlert(tx, {
        merchantId: merchant.id, kind: 'reconciliation.mismatch', severity: 'critical', subject: date, at,
        detail: { reconciliation: report.id, missing_upstream: count('missing_upstream'), missing_locally: count('missing_locally'), digest_mismatch: count('digest_mismatch') },
      });
    }
    await recordAudit(tx, ports.clock, { merchantId: merchant.id, actor: caller.actor, action: 'reconciliation.run', subject: report.id, detail: { date, matched, pending, differences: items.length } });
  });
  return { report, items: await ports.store.read.reconciliations.items(merchant.id, report.id) };
}

/** The merchant's invoices issued on `date`, by number. */
async function localInvoices(ports: Ports, merchantId: string, date: string): Promise<Map<string, Invoice>> {
  const found = new Map<string, Invoice>();
  for (let beforeIndex: number | undefined; ;) {
    const page = await ports.store.read.invoices.list(merchantId, { dateFrom: date, dateTo: date, ...(beforeIndex !== undefined && { beforeIndex }) }, LOCAL_PAGE);
    for (const invoice of page) found.set(invoice.number, invoice);
    if (page.length < LOCAL_PAGE) return found;
    beforeIndex = page.at(-1)!.chainIndex;
  }
}

export async function getReconciliation(ports: Ports, caller: Caller, id: string): Promise<ReconciliationResult> {
  authorize(caller, 'ops.read');
  const report = await ports.store.read.reconciliations.get(caller.merchantId, id);
  if (!report) throw new Fault(faults.RECONCILIATION_NOT_FOUND, { id });
  return { report, items: await ports.store.read.reconciliations.items(caller.merchantId, id) };
}

export async function listReconciliations(ports: Ports, caller: Caller, filter: { date?: string; limit?: number }): Promise<ReconciliationReport[]> {
  authorize(caller, 'ops.read');
  return ports.store.read.reconciliations.list(caller.merchantId, filter, Math.min(Math.max(filter.limit ?? 50, 1), 200));
}

/**
 * Resolves one difference. 'reupload' (only for an invoice we hold and the tax service does not)
 * queues the invoice's upload again; 'investigated' records what a person found.
 */
export async function resolveDifference(ports: Ports, caller: Caller, itemId: number, action: { action: 'reupload' | 'investigated'; note?: string }): Promise<ReconciliationItem> {
  authorize(caller, 'ops.read');
  const note = action.note?.trim() || null;
  if (action.action === 'investigated' && !note) throw new Fault(faults.RECONCILIATION_ACTION_INVALID, { reason: bilingual('须填写备注，说明调查发现了什么', 'a note saying what was found is required') }, [{ field: 'note', issue: 'required' }]);
  const at = shanghaiTimestamp(ports.clock.now());
  return ports.store.write(async (tx) => {
    const item = await tx.reconciliations.item(caller.merchantId, itemId);
    if (!item) throw new Fault(faults.RECONCILIATION_NOT_FOUND, { id: String(itemId) });
    if (item.resolution) throw new Fault(faults.RECONCILIATION_ALREADY_RESOLVED, {
        resolution: bilingual(
          `已由 ${item.resolvedBy} 于 ${item.resolvedAt} ${RESOLUTION_ZH[item.resolution] ?? item.resolution}`,
          `${item.resolution} by ${item.resolvedBy} at ${item.resolvedAt}`,
        ),
      });
    if (action.action === 'reupload') {
      const invoice = item.difference === 'missing_upstream' ? await tx.invoices.get(caller.merchantId, item.number) : undefined;
      if (!invoice) {
        throw new Fault(faults.RECONCILIATION_ACTION_INVALID, {
          reason: item.difference === 'digest_mismatch'
            ? bilingual('税务服务持有该发票的另一版本，不会被覆盖，请调查处理', 'the tax service holds another version; it is never overwritten: investigate')
            : bilingual('只有本系统存有而税务服务缺失的发票才能重新上传', 'only an invoice kept here and missing at the tax service can be uploaded again'),
        }, [{ field: 'action', issue: 'reupload not possible for this difference' }]);
      }
      await tx.merchants.hold(caller.merchantId); // the backlog's counters move under the lock the issue path checks them under
      await enqueueUploads(tx, [invoice], at, { reconciliation: item.reconciliationId });
      if (invoice.status === 'voided') await voidAgainAfterUpload(tx, invoice, at);
      // Back in the upload backlog, as when it was issued: the upload worker takes it out again when
      // the job is done, so the offline counters stay balanced. Counted from now, not from its issue:
      // it was found missing today.
      await tx.usage.add(caller.merchantId, [{ period: backlogPeriod(invoice.kind), invoiceCount: 1, preTaxFen: invoice.totalAmount }], at);
    }
    if (!(await tx.reconciliations.resolve(caller.merchantId, itemId, { resolution: action.action === 'reupload' ? 'reuploaded' : 'investigated', at, by: caller.actor, note }))) {
      throw new Fault(faults.RECONCILIATION_ALREADY_RESOLVED, { resolution: bilingual('刚刚已被处理', 'just now') });
    }
    await recordAudit(tx, ports.clock, { merchantId: caller.merchantId, actor: caller.actor, action: `reconciliation.${action.action}`, subject: item.number, detail: { item: itemId, reconciliation: item.reconciliationId, note } });
    return (await tx.reconciliations.item(caller.merchantId, itemId))!;
  });
}

/**
 * A voided invoice the tax service lost must be voided there again once it holds it again: the
 * invoice waits for its re-upload as if never accepted (the upload worker's acceptance then makes
 * the void due), and a void whose report was settled (refused, as INVOICE_UNKNOWN, or reported) gets
 * a new job; a pending one's job is still there and now waits for the upload too.
 */
async function voidAgainAfterUpload(tx: Repositories, invoice: Invoice, at: string): Promise<void> {
  await tx.voids.awaitUpload(invoice.merchantId, invoice.number);
  if (invoice.voidReport?.state === 'pending') return;
  await enqueueVoid(tx, invoice.merchantId, invoice.number, { reason: invoice.voidReason!, voidedAt: invoice.statusChangedAt! }, at);
}

/** The daily job: reconciles yesterday (Shanghai) for every merchant, once across all instances. */
export async function reconcileYesterday(ports: ReconcilePorts, owner: string, log: { info(o: object, m: string): void; warn(o: object, m: string): void }): Promise<'done' | 'not-due' | 'busy'> {
  const now = ports.clock.now();
  const yesterday = shanghaiDate(new Date(now.getTime() - 86_400_000));
  const lease = await ports.store.write((tx) => tx.jobLeases.acquire(DAILY_JOB, owner, shanghaiTimestamp(now), shanghaiTimestamp(new Date(now.getTime() + 30 * 60_000))));
  if (!lease) return 'busy';
  if (lease.lastDone !== null && lease.lastDone >= yesterday) {
    await ports.store.write((tx) => tx.jobLeases.release(DAILY_JOB, owner));
    return 'not-due';
  }
  let failed = 0;
  try {
    for (const merchant of await ports.store.read.merchants.list()) {
      try {
        const { report } = await reconcile(ports, { merchantId: merchant.id, role: 'operator', actor: 'system:daily-reconciliation' }, yesterday);
        log.info({ merchant: merchant.id, date: yesterday, matched: report.matched, pending: report.pending, differences: report.differences }, 'reconciliation');
      } catch (error) {
        failed += 1;
        log.warn({ merchant: merchant.id, date: yesterday, code: error instanceof Fault ? error.code : 9001, err: error }, 'reconciliation failed; will retry');
      }
    }
  } finally {
    // Only a run where every merchant was reconciled counts as done; otherwise the next tick tries again.
    await ports.store.write((tx) => (failed === 0 ? tx.jobLeases.finish(DAILY_JOB, owner, yesterday) : tx.jobLeases.release(DAILY_JOB, owner)));
  }
  return 'done';
}

export const DAILY_JOB = 'reconciliation.daily';

/** Checks every `everyMs` whether yesterday still needs reconciling; returns a stop function. */
export function scheduleReconciliation(
  ports: ReconcilePorts, owner: string, log: { info(o: object, m: string): void; warn(o: object, m: string): void }, options: { everyMs?: number; metrics?: Registry } = {},
): () => void {
  const everyMs = options.everyMs ?? 10 * 60_000;
  const metrics = options.metrics && {
    lastRun: new Gauge({ name: 'fapiao_reconciliation_last_run_timestamp_seconds', help: 'When the daily reconciliation last finished', registers: [options.metrics], aggregator: 'max' }),
    failures: new Counter({ name: 'fapiao_reconciliation_failures_total', help: 'Daily reconciliation runs that could not start, by fault code', labelNames: ['code'], registers: [options.metrics] }),
  };
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    reconcileYesterday(ports, owner, log)
      .then((outcome) => {
        if (outcome === 'done') metrics?.lastRun.set(ports.clock.now().getTime() / 1000);
      })
      .catch((error) => {
        const code = error instanceof Fault ? error.code : 9001;
        metrics?.failures.inc({ code: String(code) });
        log.warn({ code, err: error }, 'daily reconciliation could not start; will retry');
      })
      .finally(() => {
        running = false;
      });
  };
  const first = setTimeout(tick, Math.min(everyMs, 60_000));
  const timer = setInterval(tick, everyMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
