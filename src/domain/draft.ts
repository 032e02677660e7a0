// Turns an invoice request (API shape, already structurally valid) into a priced draft, or
// refuses it with a fault naming the field. Nothing is stored before this has passed.
import { bilingual, Fault, faults, type Bilingual, type FieldIssue } from './faults.js';
import type { Buyer, InvoiceDraft, InvoiceKind, InvoiceLine } from './invoice.js';
import { formatTaxRate, priceInvoiceLines } from './tax.js';
import { printedTextCheck, type PrintableCharacters, type TextCheck } from './text.js';
import { validateTaxpayerId } from './taxpayer-id.js';

export const MAX_LINES = 2000;

export interface BuyerRequest {
  name: string;
  tax_id: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
  email: string;
}

export interface LineRequest {
  name: string;
  tax_code: string;
  spec: string;
  unit: string;
  quantity: string;
  unit_price: string;
  tax_rate: string;
}

export interface InvoiceRequest {
  kind: InvoiceKind;
  prices_include_tax: boolean;
  remarks: string;
  buyer: BuyerRequest;
  lines: LineRequest[];
}

/** The texts printed on the invoice (all but the e-mail address) may hold only `printable` characters, those of the font. */
export function draftInvoice(request: InvoiceRequest, printable: PrintableCharacters): InvoiceDraft {
  if (request.lines.length === 0) throw new Fault(faults.LINES_EMPTY, {}, [{ field: 'lines', issue: 'empty' }]);
  if (request.lines.length > MAX_LINES) {
    throw new Fault(faults.LINES_TOO_MANY, { count: String(request.lines.length), max: String(MAX_LINES) }, [{ field: 'lines', issue: 'too many' }]);
  }
  const checkPrintedText = printedTextCheck(printable);
  const buyer = checkBuyer(request.buyer, request.kind, checkPrintedText);
  const remarks = checkPrintedText(request.remarks, 'remarks', 230);
  const texts = request.lines.map((line, i) => checkLineText(line, `lines[${i}]`, checkPrintedText));
  const priced = priceInvoiceLines(request.lines, request.prices_include_tax);
  // Field by field rather than `{ ...text, quantity }`: see invoiceContent (invoice.ts).
  const lines: InvoiceLine[] = priced.lines.map((p, i) => {
    const text = texts[i]!;
    return {
      name: text.name,
      taxCode: text.taxCode,
      spec: text.spec,
      unit: text.unit,
      quantity: p.quantity.toFixed(),
      unitPrice: p.unitPrice.toFixed(),
      taxRate: formatTaxRate(p.rate),
      amount: p.amount,
      tax: p.tax,
    };
  });
  return {
    kind: request.kind,
    pricesIncludeTax: request.prices_include_tax,
    remarks,
    buyer,
    lines,
    totalAmount: priced.totalAmount,
    totalTax: priced.totalTax,
    totalWithTax: priced.totalWithTax,
  };
}

function checkBuyer(b: BuyerRequest, kind: InvoiceKind, checkPrintedText: TextCheck): Buyer {
  const buyer: Buyer = {
    name: checkPrintedText(b.name, 'buyer.name', 100, true),
    taxId: b.tax_id,
    address: checkPrintedText(b.address, 'buyer.address', 100),
    phone: checkPhone(b.phone),
    bank: checkPrintedText(b.bank, 'buyer.bank', 100),
    account: checkPrintedText(b.account, 'buyer.account', 50),
    email: checkEmail(b.email),
  };
  // A special VAT invoice (专票) lets the buyer deduct input tax, so it must name a taxpayer;
  // an ordinary invoice may go to a person with no taxpayer ID.
  if (b.tax_id === '' && kind === 'special') {
    throw new Fault(faults.FIELD_MISSING, { field: 'buyer.tax_id' }, [{ field: 'buyer.tax_id', issue: 'required for a special VAT invoice (专票)' }]);
  }
  if (b.tax_id !== '') checkBuyerTaxId(b.tax_id);
  return buyer;
}

function checkBuyerTaxId(taxId: string): void {
  try {
    validateTaxpayerId(taxId);
  } catch (error) {
    if (error instanceof Fault) throw new Fault(error.spec, error.params, [{ field: 'buyer.tax_id', issue: error.params.reason?.en ?? error.message }]);
    throw error;
  }
}

function checkLineText(line: LineRequest, field: string, checkPrintedText: TextCheck): Pick<InvoiceLine, 'name' | 'taxCode' | 'spec' | 'unit'> {
  // 税收分类编码: the 19-digit goods and services tax classification code.
  if (!/^\d{19}$/.test(line.tax_code)) throw fieldInvalid(`${field}.tax_code`, bilingual('税收分类编码应为 19 位数字', 'a tax classification code (税收分类编码) has 19 digits'));
  return {
    name: checkPrintedText(line.name, `${field}.name`, 100, true),
    taxCode: line.tax_code,
    spec: checkPrintedText(line.spec, `${field}.spec`, 40),
    unit: checkPrintedText(line.unit, `${field}.unit`, 20),
  };
}

function checkPhone(phone: string): string {
  if (phone !== '' && !/^[0-9+\-() ]{3,30}$/.test(phone)) throw fieldInvalid('buyer.phone', bilingual('只能包含数字、空格和 + - ( )，最多 30 个字符', 'digits, spaces and + - ( ) only, at most 30'));
  return phone;
}

function checkEmail(email: string): string {
  if (email !== '' && !/^[^\s@]{1,64}@[^\s@]+\.[^\s@]{2,}$/.test(email)) throw fieldInvalid('buyer.email', bilingual('不是有效的电子邮箱地址', 'not an e-mail address'));
  return email;
}

function fieldInvalid(field: string, reason: Bilingual): Fault {
  const details: FieldIssue[] = [{ field, issue: reason.en }];
  return new Fault(faults.FIELD_INVALID, { field, reason }, details);
}
