import { Decimal } from 'decimal.js';
import { Fault, faults, bilingual, inLanguage, type Bilingual, type FaultSpec } from './faults.js';
import { assertInvoiceRange, divideRoundHalfUp, formatYuan, type Fen } from './money.js';

/** VAT rates in force (增值税税率/征收率), plus 免税 (exempt) and 不征税 (outside the scope of VAT). */
export type TaxRate =
  | { kind: 'percent'; percent: 13 | 9 | 6 | 5 | 3 | 1 | 0 }
  | { kind: 'exempt' }
  | { kind: 'non_taxable' };

/**
 * Decimal with room for quantity × unit price exactly: both have at most 12 integer digits and
 * 8 decimals, so a product needs at most 40 significant digits (the library default is 20, which
 * would round silently).
 */
const Exact = Decimal.clone({ precision: 64, rounding: Decimal.ROUND_HALF_UP });

const MAX_DECIMAL_PLACES = 8;
const MAX_QUANTITY_OR_PRICE = new Exact('1e12');

// Per-line and per-invoice limits of the official invoicing software, in fen.
const LINE_AMOUNT_TOLERANCE_FEN = 1n;
const LINE_TAX_TOLERANCE_FEN = 6n;
const INVOICE_TAX_TOLERANCE_FEN = 127n;

const RATE_TEXTS: ReadonlyMap<string, TaxRate> = new Map<string, TaxRate>([
  ['0.13', { kind: 'percent', percent: 13 }],
  ['0.09', { kind: 'percent', percent: 9 }],
  ['0.06', { kind: 'percent', percent: 6 }],
  ['0.05', { kind: 'percent', percent: 5 }],
  ['0.03', { kind: 'percent', percent: 3 }],
  ['0.01', { kind: 'percent', percent: 1 }],
  ['0', { kind: 'percent', percent: 0 }],
  ['0.0', { kind: 'percent', percent: 0 }],
  ['0.00', { kind: 'percent', percent: 0 }],
  ['exempt', { kind: 'exempt' }],
  ['non_taxable', { kind: 'non_taxable' }],
]);

export function parseTaxRate(text: string, field: string): TaxRate {
  const rate = RATE_TEXTS.get(text);
  if (!rate) throw new Fault(faults.TAX_RATE_UNKNOWN, { field, value: text });
  return { ...rate }; // a copy, so no caller can alter the table
}

/** The canonical text of a rate: "0.13", "0", "exempt", "non_taxable". */
export function formatTaxRate(rate: TaxRate): string {
  if (rate.kind !== 'percent') return rate.kind;
  return rate.percent === 0 ? '0' : `0.${String(rate.percent).padStart(2, '0')}`;
}

/** The rate as whole percent; exempt and non-taxable lines carry no tax. */
export function taxPercent(rate: TaxRate): bigint {
  return rate.kind === 'percent' ? BigInt(rate.percent) : 0n;
}

export function parseQuantity(text: string, field: string): Decimal {
  return parsePositiveDecimal(text, field, faults.QUANTITY_INVALID, bilingual('数量', 'quantity'));
}

export function parseUnitPrice(text: string, field: string): Decimal {
  return parsePositiveDecimal(text, field, faults.UNIT_PRICE_INVALID, bilingual('单价', 'unit price'));
}

export type LineInput = { quantity: Decimal; unitPrice: Decimal; rate: TaxRate; pricesIncludeTax: boolean };
export type LinePrice = { amount: Fen; tax: Fen };

/**
 * Amount (金额, before tax) and tax (税额) of one line, `field` being the line's path ("lines[2]").
 * Without tax in the price: amount = round(q × p), tax = round(amount × rate).
 * With tax in the price:   incl = round(q × p), tax = round(incl × rate / (1 + rate)), amount = incl − tax.
 * All rounding is to the fen, half up.
 */
export function priceLine(input: LineInput, field: string): LinePrice {
  const gross = toFen(product(input.quantity, input.unitPrice));
  const percent = taxPercent(input.rate);
  const price = input.pricesIncludeTax
    ? splitTaxInclusive(gross, percent)
    : { amount: gross, tax: divideRoundHalfUp(gross * percent, 100n) };
  checkLineRange(price, `${field}.amount`);
  return price;
}

/** What a printed line says: quantity and unit price as decimal text, amount (金额) in fen. */
export type PrintedLine = { quantity: string; unitPrice: string; amount: Fen };

/**
 * 单价 as the invoice prints it: excluding tax, like 金额 beside it, so that 数量 × 单价 ≈ 金额.
 * A tax-exclusive price is printed as entered. A tax-inclusive one is replaced by 金额 ÷ 数量,
 * rounded half up to 8 decimals (the most a unit price has) with trailing zeros dropped, as the
 * official software prints it: 94.33 ÷ 3 → "31.44333333", 100.00 ÷ 4 → "25".
 * Only the page changes; the stored invoice keeps the price that was asked for.
 */
export function unitPriceExcludingTax(line: PrintedLine, pricesIncludeTax: boolean): string {
  if (!pricesIncludeTax) return line.unitPrice;
  // In integers, so the quotient is exact before its one rounding: the quantity "12.5" is
  // 125 / 10^1, and a price in units of 10^-8 yuan is amount (fen) × 10^6 × 10^1 / 125.
  const [whole = '', decimals = ''] = line.quantity.split('.');
  const quantityUnits = BigInt(whole + decimals);
  const priceUnits = divideRoundHalfUp(line.amount * 10n ** BigInt(MAX_DECIMAL_PLACES - 2 + decimals.length), quantityUnits);
  return formatDecimal(priceUnits, MAX_DECIMAL_PLACES);
}

export type LineToCheck = LineInput & LinePrice;

/**
 * The official consistency checks of a line whose amount and tax may have been supplied or stored:
 * |q × p − amount| ≤ 0.01 (q × p against amount + tax when prices include tax) and
 * |amount × rate − tax| ≤ 0.06. Exempt, non-taxable and 0 % lines must carry no tax at all,
 * since a tax on them is a mistake whatever its size.
 */
export function checkLineTolerance(line: LineToCheck, field: string): void {
  const stated = line.pricesIncludeTax ? line.amount + line.tax : line.amount;
  const gross = product(line.quantity, line.unitPrice);
  const grossDifference = gross.minus(new Exact(stated.toString()).dividedBy(100)).abs();
  if (grossDifference.greaterThan(new Exact(LINE_AMOUNT_TOLERANCE_FEN.toString()).dividedBy(100))) {
    const what = line.pricesIncludeTax ? bilingual('价税合计', 'amount + tax') : bilingual('金额', 'amount');
    throw toleranceExceeded(
      `${field}.amount`,
      bilingual(
        `数量 × 单价 = ${gross.toFixed()}，与${what.zh} ${formatYuan(stated)} 相差 ${grossDifference.toFixed()}（允许误差 0.01）`,
        `quantity × unit price = ${gross.toFixed()} differs from ${what.en} ${formatYuan(stated)} by ${grossDifference.toFixed()} (limit 0.01)`,
      ),
    );
  }
  const percent = taxPercent(line.rate);
  if (percent === 0n && line.tax !== 0n) {
    throw toleranceExceeded(
      `${field}.tax`,
      bilingual(`税率为 ${formatTaxRate(line.rate)} 的明细行不应有税额，实际为 ${formatYuan(line.tax)}`, `a line at rate ${formatTaxRate(line.rate)} carries no tax, found ${formatYuan(line.tax)}`),
    );
  }
  // Compared in hundredths of a fen so that amount × rate stays exact.
  const taxDifference = abs(line.amount * percent - line.tax * 100n);
  if (taxDifference > LINE_TAX_TOLERANCE_FEN * 100n) {
    throw toleranceExceeded(
      `${field}.tax`,
      bilingual(
        `金额 × 税率 = ${formatHundredthsOfFen(line.amount * percent)}，与税额 ${formatYuan(line.tax)} 相差 ${formatHundredthsOfFen(taxDifference)}（允许误差 0.06）`,
        `amount × rate = ${formatHundredthsOfFen(line.amount * percent)} differs from tax ${formatYuan(line.tax)} by ${formatHundredthsOfFen(taxDifference)} (limit 0.06)`,
      ),
    );
  }
}

export type InvoiceLineText = { quantity: string; unit_price: string; tax_rate: string };
export type PricedLine = { quantity: Decimal; unitPrice: Decimal; rate: TaxRate; amount: Fen; tax: Fen };
export type PricedInvoice = { lines: PricedLine[]; totalAmount: Fen; totalTax: Fen; totalWithTax: Fen };

/**
 * Prices every line of an invoice and totals them. Every line is examined before giving up, so a
 * rejection lists all the fields to fix in `details`, not just the first.
 */
export function priceInvoiceLines(lines: readonly InvoiceLineText[], pricesIncludeTax: boolean): PricedInvoice {
  if (lines.length === 0) {
    throw new Fault(faults.AMOUNT_OUT_OF_RANGE, { field: 'lines', reason: bilingual('发票至少需要一行明细', 'an invoice needs at least one line') });
  }
  const priced: PricedLine[] = [];
  const problems: Fault[] = [];
  lines.forEach((line, index) => {
    try {
      priced.push(priceOneLine(line, `lines[${index}]`, pricesIncludeTax));
    } catch (error) {
      if (!(error instanceof Fault)) throw error;
      problems.push(error);
    }
  });
  const [first] = problems;
  if (first) throw new Fault(first.spec, first.params, problems.map(describeProblem));
  return totalled(priced);
}

function priceOneLine(line: InvoiceLineText, field: string, pricesIncludeTax: boolean): PricedLine {
  const quantity = parseQuantity(line.quantity, `${field}.quantity`);
  const unitPrice = parseUnitPrice(line.unit_price, `${field}.unit_price`);
  const rate = parseTaxRate(line.tax_rate, `${field}.tax_rate`);
  return { quantity, unitPrice, rate, ...priceLine({ quantity, unitPrice, rate, pricesIncludeTax }, field) };
}

function totalled(lines: PricedLine[]): PricedInvoice {
  const totalAmount = lines.reduce((sum, line) => sum + line.amount, 0n);
  const totalTax = lines.reduce((sum, line) => sum + line.tax, 0n);
  checkAccumulatedTax(lines);
  assertInvoiceRange(totalAmount, 'lines');
  assertInvoiceRange(totalTax, 'lines');
  const totalWithTax = assertInvoiceRange(totalAmount + totalTax, 'lines');
  return { lines, totalAmount, totalTax, totalWithTax };
}

// Rounding each line's tax can drift from the tax on the total; the official software caps the drift.
function checkAccumulatedTax(lines: PricedLine[]): void {
  const exact = lines.reduce((sum, line) => sum + line.amount * taxPercent(line.rate), 0n);
  const charged = lines.reduce((sum, line) => sum + line.tax * 100n, 0n);
  const difference = abs(exact - charged);
  if (difference > INVOICE_TAX_TOLERANCE_FEN * 100n) {
    throw toleranceExceeded(
      'lines',
      bilingual(
        `各行税额合计 ${formatHundredthsOfFen(charged)}，而 Σ 金额 × 税率 为 ${formatHundredthsOfFen(exact)}，差额 ${formatHundredthsOfFen(difference)} 超过 1.27，请拆分为多张发票`,
        `the line taxes add up to ${formatHundredthsOfFen(charged)} but Σ amount × rate is ${formatHundredthsOfFen(exact)}; the difference ${formatHundredthsOfFen(difference)} exceeds 1.27 — split the invoice`,
      ),
    );
  }
}

function splitTaxInclusive(gross: Fen, percent: bigint): LinePrice {
  const tax = divideRoundHalfUp(gross * percent, 100n + percent);
  return { amount: gross - tax, tax };
}

function checkLineRange(price: LinePrice, field: string): void {
  if (price.amount === 0n) {
    throw new Fault(faults.AMOUNT_OUT_OF_RANGE, {
      field,
      reason: bilingual('明细行金额四舍五入后为零，请提高数量或单价', 'line amount rounds to zero; raise the quantity or the unit price'),
    });
  }
  assertInvoiceRange(price.amount, field);
  assertInvoiceRange(price.amount + price.tax, field);
}

function product(quantity: Decimal, unitPrice: Decimal): Decimal {
  return new Exact(quantity).times(unitPrice);
}

function toFen(yuan: Decimal): Fen {
  return BigInt(yuan.times(100).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));
}

// Plain notation only, as on the invoice; decimal.js alone would also take "1e3", "0x10" or " 5".
const DECIMAL_TEXT = /^-?\d+(?:\.\d+)?$/;

function parsePositiveDecimal(text: string, field: string, spec: FaultSpec, what: Bilingual): Decimal {
  const fail = (zh: string, en: string) => new Fault(spec, { field, reason: bilingual(zh, en) });
  if (!DECIMAL_TEXT.test(text)) {
    throw fail(
      `“${text}”不是普通的十进制数（只能有数字和一个小数点，不能用指数、“+”或空格）`,
      `'${text}' is not a plain decimal number (digits and an optional '.'; no exponent, '+', or spaces)`,
    );
  }
  const decimals = text.split('.')[1]?.length ?? 0;
  if (decimals > MAX_DECIMAL_PLACES) {
    throw fail(`有 ${decimals} 位小数，最多允许 ${MAX_DECIMAL_PLACES} 位`, `${decimals} decimal places; at most ${MAX_DECIMAL_PLACES} are allowed`);
  }
  const value = new Exact(text);
  if (value.lessThanOrEqualTo(0)) throw fail(`${what.zh}必须大于 0`, `the ${what.en} must be greater than 0`);
  if (value.greaterThan(MAX_QUANTITY_OR_PRICE)) throw fail(`${what.zh}不能超过 1000000000000`, `the ${what.en} must not exceed 1000000000000`);
  return value;
}

function describeProblem(fault: Fault): { field: string; issue: string } {
  const field = inLanguage(fault.params.field ?? 'lines', 'en');
  const issue = fault.params.reason?.en ?? `'${inLanguage(fault.params.value ?? '', 'en')}' is not a known tax rate`;
  return { field, issue };
}

function toleranceExceeded(field: string, reason: Bilingual): Fault {
  return new Fault(faults.TAX_TOLERANCE_EXCEEDED, { field, reason });
}

function abs(value: bigint): bigint {
  return value < 0n ? -value : value;
}

/**
 * `units` × 10^-places as plain decimal text, trailing zeros dropped down to `keptPlaces`:
 * (3144333333n, 8) → "31.44333333", (2500000000n, 8) → "25", (600n, 4, 2) → "0.06".
 */
function formatDecimal(units: bigint, places: number, keptPlaces = 0): string {
  const scale = 10n ** BigInt(places);
  const magnitude = abs(units);
  const decimals = (magnitude % scale).toString().padStart(places, '0');
  const shown = decimals.slice(0, keptPlaces) + decimals.slice(keptPlaces).replace(/0+$/, '');
  return `${units < 0n ? '-' : ''}${magnitude / scale}${shown ? `.${shown}` : ''}`;
}

// Hundredths of a fen (1/10000 yuan) as a yuan figure with four decimals, trailing zeros trimmed to two.
function formatHundredthsOfFen(value: bigint): string {
  return formatDecimal(value, 4, 2);
}
