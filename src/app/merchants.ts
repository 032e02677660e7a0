// Merchants are created by the platform operator (CLI). Their limits: the daily count and the
// operator's own monthly credit limit, set here; the tax service's grant (授信额度) comes with its
// terms (upstream-upkeep.ts), and the lower of the two binds (domain/credit-line.ts).
import { randomUUID } from 'node:crypto';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { parseYuan } from '../domain/money.js';
import { validateRegionCode } from '../domain/numbering.js';
import { validateTaxpayerId } from '../domain/taxpayer-id.js';
import { printedTextCheck } from '../domain/text.js';
import { printableCharacters } from '../documents/font.js';
import { shanghaiTimestamp } from '../domain/time.js';
import { recordAudit } from './audit.js';
import type { MerchantRecord, Ports } from './ports.js';

export interface MerchantInput {
  name: string;
  taxId: string;
  regionCode: string;
  address?: string;
  phone?: string;
  bank?: string;
  account?: string;
  dailyInvoiceLimit?: number | null;
  operatorCredit?: string | null; // the operator's monthly credit limit: pre-tax yuan, decimal text; null = none
}

export async function addMerchant(ports: Ports, input: MerchantInput, actor = 'platform'): Promise<MerchantRecord> {
  const checkPrintedText = printedTextCheck(printableCharacters()); // the seller block of every invoice
  const merchant: MerchantRecord = {
    id: `m_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
    name: checkPrintedText(input.name, 'name', 100, true),
    taxId: sellerTaxId(input.taxId),
    regionCode: validateRegionCode(input.regionCode),
    address: checkPrintedText(input.address ?? '', 'address', 100),
    phone: checkPrintedText(input.phone ?? '', 'phone', 30),
    bank: checkPrintedText(input.bank ?? '', 'bank', 100),
    account: checkPrintedText(input.account ?? '', 'account', 50),
    dailyInvoiceLimit: dailyLimit(input.dailyInvoiceLimit ?? null),
    operatorCreditFen: monthlyCredit(input.operatorCredit ?? null),
    grantedCreditFen: null, // until the tax service's terms are fetched
    createdAt: shanghaiTimestamp(ports.clock.now()),
  };
  return ports.store.write(async (tx) => {
    if (await tx.merchants.findByTaxId(merchant.taxId)) throw new Fault(faults.MERCHANT_EXISTS, { taxId: merchant.taxId });
    await tx.merchants.insert(merchant);
    await recordAudit(tx, ports.clock, { merchantId: merchant.id, actor, action: 'merchant.added', subject: merchant.id, detail: { name: merchant.name, taxId: merchant.taxId, operatorCreditFen: merchant.operatorCreditFen?.toString() ?? null } });
    return merchant;
  });
}

export async function setMerchantLimits(
  ports: Ports,
  merchantId: string,
  limits: { dailyInvoiceLimit: number | null; operatorCredit: string | null },
  actor = 'platform',
): Promise<MerchantRecord> {
  const dailyInvoiceLimit = dailyLimit(limits.dailyInvoiceLimit);
  const operatorCreditFen = monthlyCredit(limits.operatorCredit);
  return ports.store.write(async (tx) => {
    const merchant = await tx.merchants.lock(merchantId);
    if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: merchantId });
    await tx.merchants.setLimits(merchantId, { dailyInvoiceLimit, operatorCreditFen });
    await recordAudit(tx, ports.clock, {
      merchantId, actor, action: 'merchant.limits_changed', subject: merchantId,
      detail: { dailyInvoiceLimit, operatorCreditFen: operatorCreditFen?.toString() ?? null },
    });
    return { ...merchant, dailyInvoiceLimit, operatorCreditFen };
  });
}

function sellerTaxId(taxId: string): string {
  try {
    return validateTaxpayerId(taxId).normalized;
  } catch (error) {
    if (error instanceof Fault) throw new Fault(faults.SELLER_TAX_ID_INVALID, error.params, [{ field: 'tax_id', issue: error.params.reason?.en ?? '' }]);
    throw error;
  }
}

function monthlyCredit(yuan: string | null): bigint | null {
  return yuan === null ? null : parseYuan(yuan, 'monthly_credit');
}

function dailyLimit(value: number | null): number | null {
  if (value !== null && (!Number.isInteger(value) || value < 0 || value > 10_000_000)) {
    throw new Fault(faults.FIELD_INVALID, { field: 'daily_invoice_limit', reason: bilingual('应为 0 到 10,000,000 之间的整数', 'a whole number from 0 to 10,000,000') });
  }
  return value;
}
