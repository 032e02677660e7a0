// The API's request and response shapes. The same zod schemas validate requests and generate
// /api/v1/openapi.json. Amounts, quantities and prices are decimal strings, never JSON numbers.
import { z } from 'zod';
import { invoiceKinds, invoiceStatuses } from '../domain/invoice.js';
import { voidReportStates } from '../domain/void-report.js';
import { MAX_LINES } from '../domain/draft.js';
import { roles } from '../domain/access.js';
import { creditBindings } from '../domain/credit-line.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../app/query-invoices.js';

// Lengths and counts are checked by the domain, which counts characters (not UTF-16 units) and
// answers with the rule's own code; these bounds only stop absurd bodies early. The OpenAPI
// document states the real limits (`meta` overrides what the loose bound would say).
const text = (max: number) => z.string().max(max * 4).meta({ maxLength: max });
const decimal = z.string().max(40).describe('a decimal number written as a string, e.g. "1000.00"');

export const BuyerRequest = z.strictObject({
  name: text(100),
  tax_id: z.string().max(40).default('').describe('统一社会信用代码 (18 characters) or a legacy taxpayer ID; required for special invoices'),
  address: text(100).default(''),
  phone: z.string().max(40).default(''),
  bank: text(100).default(''),
  account: text(50).default(''),
  email: z.string().max(254).default(''),
});

export const LineRequest = z.strictObject({
  name: text(100).describe('item name, e.g. "*信息技术服务*软件开发"'),
  tax_code: z.string().max(40).describe('19-digit tax classification code (税收分类编码)'),
  spec: text(40).default(''),
  unit: text(20).default(''),
  quantity: decimal,
  unit_price: decimal,
  tax_rate: z.string().max(20).describe('"0.13", "0.09", "0.06", "0.05", "0.03", "0.01", "0", "exempt" (免税) or "non_taxable" (不征税)'),
});

export const IssueRequest = z.strictObject({
  kind: z.enum(invoiceKinds).describe('normal = 普通发票, special = 增值税专用发票'),
  prices_include_tax: z.boolean().default(false),
  remarks: text(230).default(''),
  buyer: BuyerRequest,
  lines: z.array(LineRequest).max(MAX_LINES * 2).meta({ minItems: 1, maxItems: MAX_LINES }),
});

const PartyView = z.object({ name: z.string(), tax_id: z.string(), address: z.string(), phone: z.string(), bank: z.string(), account: z.string() });

export const InvoiceView = z.object({
  number: z.string().describe('20 digits: year, region, channel, sequence'),
  kind: z.enum(invoiceKinds),
  status: z.enum(invoiceStatuses),
  issued_at: z.string().describe('Asia/Shanghai time, e.g. 2026-11-22T08:03:01.123+08:00'),
  prices_include_tax: z.boolean(),
  remarks: z.string(),
  issuer: z.string(),
  seller: PartyView,
  buyer: PartyView.extend({ email: z.string() }),
  lines: z.array(
    z.object({
      name: z.string(), tax_code: z.string(), spec: z.string(), unit: z.string(), quantity: z.string(),
      unit_price: z.string().describe('as requested: including tax when prices_include_tax is true (the PDF prints 单价 excluding tax, 金额 ÷ 数量)'),
      tax_rate: z.string(), amount: z.string().describe('金额, excluding tax'), tax: z.string(),
    }),
  ),
  total_amount: z.string(),
  total_tax: z.string(),
  total_with_tax: z.string().describe('价税合计'),
  total_in_words: z.string().describe('价税合计 in Chinese capitals (大写)'),
  digest: z.string().describe('SHA-256 of the canonical invoice content'),
  chain_hash: z.string(),
  check_code: z.string().describe('校验码: 20 digits printed on the invoice and asked for by public verification (POST /api/v1/verify)'),
  signature: z.object({ key_id: z.string(), value: z.string() }).nullable().describe("the platform's Ed25519 signature of the digest (public keys at /api/v1/keys)"),
  void_reason: z.string().nullable(),
  status_changed_at: z.string().nullable(),
  upload: z.object({
    state: z.enum(['pending', 'uploaded', 'rejected', 'quarantined']),
    code: z.number().int().nullable().describe('fault code to look up: 4024 rejected, 4025 quarantined'),
    reason: z.string().nullable().describe("the tax service's reason"),
    remedy: z.string().nullable(),
    remedy_en: z.string().nullable(),
    held_digest: z.string().nullable().describe('quarantined: the digest the tax service holds under this number'),
  }).optional().describe('what the tax service made of the invoice (when one invoice is read)'),
  void_report: z.object({
    state: z.enum(voidReportStates).describe('pending: not yet at the tax service; reported: the tax service holds it voided; refused: it refused the void (4026); not_needed: it never accepted the invoice'),
    reached_tax_service: z.boolean().describe('the tax service holds the invoice as voided'),
    waiting_for: z.enum(['upload', 'delivery']).nullable().describe('pending: for the upload to be accepted first (a void follows its upload), or for the void to be delivered'),
    at: z.string().nullable().describe('when it was reported, refused or found not needed'),
    code: z.number().int().nullable().describe('fault code to look up: 4026 refused'),
    reason: z.string().nullable().describe("the tax service's reason for a refusal"),
    remedy: z.string().nullable(),
    remedy_en: z.string().nullable(),
  }).nullable().optional().describe('a voided invoice: whether the void (作废) has reached the tax service; null otherwise'),
});

export const InvoiceQuery = z.strictObject({
  date_from: z.string().optional().describe('YYYY-MM-DD, Asia/Shanghai'),
  date_to: z.string().optional(),
  buyer_name: z.string().max(100).optional().describe('part of the buyer name'),
  buyer_tax_id: z.string().max(40).optional(),
  min_total: decimal.optional().describe('价税合计 at least'),
  max_total: decimal.optional(),
  status: z.enum(invoiceStatuses).optional(),
  kind: z.enum(invoiceKinds).optional(),
  cursor: z.string().max(100).optional(),
  limit: z.coerce.number().int().optional().meta({ minimum: 1, maximum: MAX_PAGE_SIZE, description: `page size, ${DEFAULT_PAGE_SIZE} unless given` }),
});

export const InvoicePageView = z.object({ items: z.array(InvoiceView), next_cursor: z.string().nullable() });

export const NumberParams = z.strictObject({ number: z.string().max(40) });
export const IdParams = z.strictObject({ id: z.string().max(64) });
export const VoidRequest = z.strictObject({ reason: z.string().max(800) });

export const LoginRequest = z.strictObject({ username: z.string().max(64), password: z.string().max(1024) });
export const LoginView = z.object({ expires_at: z.string(), user: z.object({ username: z.string(), role: z.string(), merchant_id: z.string() }) });

export const ApiKeyRequest = z.strictObject({ role: z.enum(roles), label: z.string().max(100) });

export const SavedBuyerRequest = BuyerRequest;
export const SavedItemRequest = LineRequest.omit({ quantity: true });
export const SearchQuery = z.strictObject({ q: z.string().max(100).optional() });

export const ErrorView = z.object({
  error: z.object({
    code: z.number().int(),
    message: z.string(),
    message_en: z.string(),
    remedy: z.string(),
    remedy_en: z.string(),
    details: z.array(z.object({ field: z.string(), issue: z.string() })),
    request_id: z.string(),
  }),
});

export const FaultView = z.object({
  code: z.number().int(), http_status: z.number().int(), message: z.string(), message_en: z.string(), cause: z.string(), remedy: z.string(), remedy_en: z.string(),
});

const ApiKeyView = z.object({ id: z.string(), role: z.string(), label: z.string(), created_at: z.string(), revoked_at: z.string().nullable() });
export const ApiKeyListView = z.object({ items: z.array(ApiKeyView) });
export const ApiKeyCreatedView = ApiKeyView.omit({ revoked_at: true }).extend({ key: z.string().describe('the whole key; shown this once only') });
export const ReadyView = z.object({ status: z.string(), database: z.string() });
export const NoContent = z.null().describe('no content');

const SavedBuyerView = z.object({
  id: z.string(), name: z.string(), tax_id: z.string(), address: z.string(), phone: z.string(), bank: z.string(), account: z.string(), email: z.string(), updated_at: z.string(),
});
const SavedItemView = z.object({
  id: z.string(), name: z.string(), tax_code: z.string(), spec: z.string(), unit: z.string(), unit_price: z.string(), tax_rate: z.string(), updated_at: z.string(),
});
export { SavedBuyerView, SavedItemView };
export const SavedBuyerListView = z.object({ items: z.array(SavedBuyerView) });
export const SavedItemListView = z.object({ items: z.array(SavedItemView) });

export const UserRequest = z.strictObject({ username: z.string().max(64), password: z.string().max(1024), role: z.enum(roles) });
export const UserView = z.object({ id: z.string(), username: z.string(), role: z.string(), merchant_id: z.string() });
export const CreditLineView = z.object({
  limit: z.string().nullable().describe('pre-tax yuan per month that may be issued: the lower of tax_service and operator; null = no credit line'),
  binding: z.enum(creditBindings).nullable().describe('which limit binds (both: they are equal); null = neither is set'),
  tax_service: z.string().nullable().describe("授信额度 granted in the tax service's terms, pre-tax yuan per month; null = none"),
  operator: z.string().nullable().describe("the platform operator's own limit (fapiao merchant limits --monthly-credit), pre-tax yuan per month; null = none"),
}).describe('The month\'s credit line (授信额度) from its two sources');
export const MerchantView = z.object({
  id: z.string(), name: z.string(), tax_id: z.string(), region_code: z.string(), address: z.string(), phone: z.string(), bank: z.string(), account: z.string(),
  daily_invoice_limit: z.number().int().nullable(),
  monthly_credit: z.string().nullable().describe('授信额度 that applies, pre-tax yuan per month: credit_line.limit; null = none'),
  credit_line: CreditLineView,
});

export const PasswordChangeRequest = z.strictObject({ current_password: z.string().max(1024), new_password: z.string().max(1024) });
