// 常用购买方 / 常用商品 (R10): what a clerk picks from instead of retyping. Saving under an
// existing name updates that entry.
import { randomUUID } from 'node:crypto';
import { authorize, type Caller } from '../domain/access.js';
import { draftInvoice, type BuyerRequest, type LineRequest } from '../domain/draft.js';
import { printableCharacters } from '../documents/font.js';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { shanghaiTimestamp } from '../domain/time.js';
import type { Ports, SavedBuyer, SavedItem } from './ports.js';

const LIST_LIMIT = 100;

export type ItemRequest = Omit<LineRequest, 'quantity'>;

export async function saveBuyer(ports: Ports, caller: Caller, buyer: BuyerRequest): Promise<SavedBuyer> {
  authorize(caller, 'saved.write');
  // The same rules as on an invoice, so a saved buyer always fills in a valid invoice.
  const checked = asEntry('buyer.', () => draftInvoice({ kind: 'normal', prices_include_tax: false, remarks: '', buyer, lines: [sampleLine] }, printableCharacters()).buyer);
  const entry: SavedBuyer = { id: newId('b'), ...checked, updatedAt: shanghaiTimestamp(ports.clock.now()) };
  return ports.store.write((tx) => tx.savedBuyers.upsert(caller.merchantId, entry));
}

export async function saveItem(ports: Ports, caller: Caller, item: ItemRequest): Promise<SavedItem> {
  authorize(caller, 'saved.write');
  const [line] = asEntry('lines[0].', () => draftInvoice({ kind: 'normal', prices_include_tax: false, remarks: '', buyer: sampleBuyer, lines: [{ ...item, quantity: '1' }] }, printableCharacters()).lines);
  const entry: SavedItem = {
    id: newId('i'),
    name: line!.name,
    taxCode: line!.taxCode,
    spec: line!.spec,
    unit: line!.unit,
    unitPrice: line!.unitPrice,
    taxRate: line!.taxRate,
    updatedAt: shanghaiTimestamp(ports.clock.now()),
  };
  return ports.store.write((tx) => tx.savedItems.upsert(caller.merchantId, entry));
}

export async function listSavedBuyers(ports: Ports, caller: Caller, search?: string): Promise<SavedBuyer[]> {
  authorize(caller, 'saved.read');
  return ports.store.read.savedBuyers.list(caller.merchantId, search || undefined, LIST_LIMIT);
}

export async function listSavedItems(ports: Ports, caller: Caller, search?: string): Promise<SavedItem[]> {
  authorize(caller, 'saved.read');
  return ports.store.read.savedItems.list(caller.merchantId, search || undefined, LIST_LIMIT);
}

export async function deleteSavedEntry(ports: Ports, caller: Caller, kind: 'buyer' | 'item', id: string): Promise<void> {
  authorize(caller, 'saved.write');
  const deleted = await ports.store.write((tx) => (kind === 'buyer' ? tx.savedBuyers : tx.savedItems).delete(caller.merchantId, id));
  if (!deleted) throw new Fault(faults.SAVED_ENTRY_NOT_FOUND, { kind: kind === 'buyer' ? bilingual('购买方', 'buyer') : bilingual('商品', 'item'), id });
}

/** Runs the invoice rules on an entry, naming fields as the entry's own body does ("tax_id", not "buyer.tax_id"). */
function asEntry<T>(prefix: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof Fault)) throw error;
    const unprefix = (field: string) => (field.startsWith(prefix) ? field.slice(prefix.length) : field);
    const { field } = error.params;
    const params = typeof field === 'string' ? { ...error.params, field: unprefix(field) } : error.params;
    throw new Fault(error.spec, params, error.details.map((d) => ({ ...d, field: unprefix(d.field) })), error.retryAfterSeconds);
  }
}

const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`;

const sampleLine: LineRequest = { name: '样品', tax_code: '1000000000000000000', spec: '', unit: '', quantity: '1', unit_price: '1', tax_rate: '0.13' };
const sampleBuyer: BuyerRequest = { name: '样品', tax_id: '', address: '', phone: '', bank: '', account: '', email: '' };
