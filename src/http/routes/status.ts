// GET /api/v1/status: what a merchant needs to know about its link to the tax service — online or
// contingency (离线) and since when, the offline limits used per kind (with what unlocks a blocked
// kind), the upload backlog's size and age, the invoice numbers left in reserve, and the month's
// credit line (授信额度: both sources, which binds, what is used and left).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { merchantStatus, type MerchantStatus } from '../../app/contingency.js';
import { invoiceKinds } from '../../domain/invoice.js';
import { formatYuan } from '../../domain/money.js';
import type { Invoice } from '../../domain/invoice.js';
import { faultMessage, faults } from '../../domain/faults.js';
import type { UploadProblem } from '../../app/upload-ports.js';
import type { HttpContext } from '../context.js';
import { CreditLineView, ErrorView } from '../schemas.js';
import { effectiveCreditLine, type CreditLimits } from '../../domain/credit-line.js';
import { uploadState, voidStep } from '../../domain/void-report.js';

const LimitView = z.object({
  kind: z.enum(invoiceKinds),
  max_offline_hours: z.number(),
  hours_used: z.number().describe('hours since the oldest un-uploaded invoice of this kind'),
  hours_ratio: z.number(),
  max_offline_amount: z.string().describe('yuan, pre-tax'),
  amount_used: z.string().describe('yuan, pre-tax, of the un-uploaded invoices of this kind'),
  amount_ratio: z.number(),
  warning: z.boolean().describe('at or past 80 % of a limit'),
  blocked: z.boolean().describe('issuing this kind is refused (4021/4022) until the backlog is uploaded'),
  unlock: z.string().describe('what unlocks a blocked kind'),
});

export const StatusView = z.object({
  mode: z.enum(['online', 'contingency']).describe('contingency = 离线开票: the tax service is not reachable; issuing goes on within the limits'),
  since: z.string().nullable(),
  last_error: z.string().nullable(),
  last_upload_at: z.string().nullable(),
  upstream: z.object({ circuit: z.string().nullable() }),
  backlog: z.object({
    count: z.number().int(),
    pre_tax_total: z.string(),
    oldest_issued_at: z.string().nullable(),
    oldest_age_hours: z.number(),
    by_kind: z.array(z.object({ kind: z.enum(invoiceKinds), count: z.number().int(), pre_tax_total: z.string(), oldest_issued_at: z.string().nullable() })),
  }),
  limits: z.array(LimitView).describe('empty until the tax service\'s terms were fetched'),
  terms_fetched_at: z.string().nullable(),
  numbers: z.object({ year: z.number().int(), remaining: z.number().int(), blocks: z.number().int() }).describe('invoice numbers left in reserve (号段)'),
  upload_problems: z.object({ rejected: z.number().int(), quarantined: z.number().int() }),
  credit_line: CreditLineView.extend({
    month: z.string().describe('YYYY-MM in Asia/Shanghai'),
    used: z.string().describe('pre-tax yuan issued this month (voided invoices give theirs back)'),
    remaining: z.string().nullable().describe('pre-tax yuan still allowed this month; null = no credit line'),
  }),
  voids: z.object({
    pending: z.number().int().describe('voided invoices whose void has not reached the tax service yet (waiting for their upload, or for delivery)'),
    refused: z.number().int().describe('voids the tax service refused (4026): it still counts those invoices as valid'),
  }),
});

const yuanOrNull = (fen: bigint | null) => (fen === null ? null : formatYuan(fen));

/** The month's credit line (授信额度): the one that applies, which source binds, and both sources. */
export function creditLineView(limits: CreditLimits): z.infer<typeof CreditLineView> {
  const line = effectiveCreditLine(limits);
  return {
    limit: line && formatYuan(line.limitFen),
    binding: line?.binding ?? null,
    tax_service: yuanOrNull(limits.grantedCreditFen),
    operator: yuanOrNull(limits.operatorCreditFen),
  };
}

export function statusView(s: MerchantStatus, circuit: string | null): z.infer<typeof StatusView> {
  const r = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 999);
  return {
    mode: s.mode,
    since: s.since,
    last_error: s.lastError,
    last_upload_at: s.lastSuccessAt,
    upstream: { circuit },
    backlog: {
      count: s.backlog.count,
      pre_tax_total: formatYuan(s.backlog.preTaxFen),
      oldest_issued_at: s.backlog.oldestAt,
      oldest_age_hours: r(s.backlog.oldestAgeHours),
      by_kind: s.backlog.byKind.map((b) => ({ kind: b.kind, count: b.count, pre_tax_total: formatYuan(b.preTaxFen), oldest_issued_at: b.oldestAt })),
    },
    limits: s.limits.map((l) => ({
      kind: l.kind, max_offline_hours: l.hours.max, hours_used: r(l.hours.used), hours_ratio: r(l.hours.ratio),
      max_offline_amount: formatYuan(l.maxOfflineAmountFen), amount_used: formatYuan(BigInt(l.amount.used)), amount_ratio: r(l.amount.ratio),
      warning: l.warning, blocked: l.blocked, unlock: l.unlock,
    })),
    terms_fetched_at: s.termsFetchedAt,
    numbers: s.numbers,
    upload_problems: s.problems,
    credit_line: {
      ...creditLineView(s.credit), month: s.credit.month, used: formatYuan(s.credit.usedFen),
      remaining: yuanOrNull(s.credit.remainingFen),
    },
    voids: s.voids,
  };
}

/** The upload part of one invoice's view: where it stands, and for a problem, the reason and what to do. */
export function uploadView(invoice: Invoice, problem: UploadProblem | undefined) {
  if (problem) {
    const spec = problem.state === 'rejected' ? faults.UPLOAD_REJECTED : faults.UPLOAD_CONFLICT;
    return {
      state: problem.state, code: spec.code,
      reason: problem.state === 'rejected' ? `${problem.reasonCode ?? ''}${problem.reasonCode ? ': ' : ''}${problem.reason ?? ''}` : faultMessage(spec, { number: invoice.number, held: problem.heldDigest ?? '?' }, 'zh'),
      remedy: spec.remedy, remedy_en: spec.remedyEn, held_digest: problem.heldDigest,
    };
  }
  const state = uploadState(invoice);
  return { state, code: null, reason: invoice.status === 'rejected' ? invoice.voidReason : null, remedy: null, remedy_en: null, held_digest: null } as const;
}

/**
 * A voided invoice's report to the tax service (作废上报): whether the void has reached it, what it
 * waits for while not, and for a refusal the reason and what to do. null for an invoice not voided.
 */
export function voidReportView(invoice: Invoice, problem: UploadProblem | undefined) {
  const report = invoice.voidReport;
  if (invoice.status !== 'voided' || !report) return null;
  const refused = report.state === 'refused';
  const step = voidStep(uploadState(invoice, problem?.state));
  return {
    state: report.state,
    reached_tax_service: report.state === 'reported',
    // Pending: waiting for the upload to be accepted first, or to be delivered (null: about to be closed as not needed).
    waiting_for: report.state !== 'pending' ? null : step === 'wait' ? ('upload' as const) : step === 'send' ? ('delivery' as const) : null,
    at: report.at,
    code: refused ? faults.VOID_REFUSED.code : null,
    reason: report.reason,
    remedy: refused ? faults.VOID_REFUSED.remedy : null,
    remedy_en: refused ? faults.VOID_REFUSED.remedyEn : null,
  };
}

/** `uploadCircuit`: absent in a process that does not upload (a cluster's HTTP workers), so status says null. */
export function statusRoutes(app: FastifyInstance, { ports }: HttpContext, uploadCircuit?: () => string): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/status', {
    schema: {
      summary: 'Connection to the tax service: online or contingency (离线), limits used, backlog, numbers in reserve; the month\'s credit line (授信额度)',
      tags: ['tax service'],
      response: { 200: StatusView, 401: ErrorView, 403: ErrorView, 404: ErrorView },
    },
  }, async (request) => {
    return statusView(await merchantStatus(ports, request.caller), uploadCircuit?.() ?? null);
  });
}
