// Domain objects as the API shows them: snake_case, money as decimal yuan strings.
import { checkCode } from '../domain/signature.js';
import { amountInWords } from '../domain/amount-in-words.js';
import type { Buyer, Invoice, Party } from '../domain/invoice.js';
import { formatYuan } from '../domain/money.js';
import { creditLineView, uploadView, voidReportView } from './routes/status.js';
import type { MerchantRecord, SavedBuyer, SavedItem } from '../app/ports.js';
import type { UploadProblem } from '../app/upload-ports.js';

const partyView = (p: Party) => ({ name: p.name, tax_id: p.taxId, address: p.address, phone: p.phone, bank: p.bank, account: p.account });
// Not `{ ...partyView(b), email }`: see invoiceContent (domain/invoice.ts).
const buyerView = (b: Buyer) => ({ name: b.name, tax_id: b.taxId, address: b.address, phone: b.phone, bank: b.bank, account: b.account, email: b.email });

export function invoiceView(invoice: Invoice) {
  return {
    number: invoice.number,
    kind: invoice.kind,
    status: invoice.status,
    issued_at: invoice.issuedAt,
    prices_include_tax: invoice.pricesIncludeTax,
    remarks: invoice.remarks,
    issuer: invoice.issuer,
    seller: partyView(invoice.seller),
    buyer: buyerView(invoice.buyer),
    lines: invoice.lines.map((l) => ({
      name: l.name, tax_code: l.taxCode, spec: l.spec, unit: l.unit, quantity: l.quantity, unit_price: l.unitPrice,
      tax_rate: l.taxRate, amount: formatYuan(l.amount), tax: formatYuan(l.tax),
    })),
    total_amount: formatYuan(invoice.totalAmount),
    total_tax: formatYuan(invoice.totalTax),
    total_with_tax: formatYuan(invoice.totalWithTax),
    total_in_words: amountInWords(invoice.totalWithTax),
    digest: invoice.digest,
    chain_hash: invoice.chainHash,
    check_code: checkCode(invoice.digest),
    signature: invoice.signature ? { key_id: invoice.signature.keyId, value: invoice.signature.value } : null,
    void_reason: invoice.voidReason,
    status_changed_at: invoice.statusChangedAt,
    upload: uploadView(invoice, undefined), // GET of one invoice adds what the tax service said about a problem
    void_report: voidReportView(invoice, undefined),
  };
}

/** One invoice read alone: its view with what the tax service said about its upload and its void. */
export function invoiceDetailView(invoice: Invoice, problem: UploadProblem | undefined) {
  return { ...invoiceView(invoice), upload: uploadView(invoice, problem), void_report: voidReportView(invoice, problem) };
}

export const savedBuyerView = (b: SavedBuyer) => ({
  id: b.id, name: b.name, tax_id: b.taxId, address: b.address, phone: b.phone, bank: b.bank, account: b.account, email: b.email, updated_at: b.updatedAt,
});

export const savedItemView = (i: SavedItem) => ({
  id: i.id, name: i.name, tax_code: i.taxCode, spec: i.spec, unit: i.unit, unit_price: i.unitPrice, tax_rate: i.taxRate, updated_at: i.updatedAt,
});

export function merchantView(m: MerchantRecord) {
  const credit = creditLineView(m);
  return {
    id: m.id, name: m.name, tax_id: m.taxId, region_code: m.regionCode, address: m.address, phone: m.phone, bank: m.bank, account: m.account,
    daily_invoice_limit: m.dailyInvoiceLimit, monthly_credit: credit.limit, credit_line: credit,
  };
}
