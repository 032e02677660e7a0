// 号段: invoice numbers come from the tax service in blocks. The issue path takes the next sequence
// of the oldest open block inside its own transaction (gap-free within a block: a refused or failed
// issue rolls its number back); a background refill keeps about a day of the merchant's recent
// issuing in reserve, with a floor, so issuing goes on through an outage of the tax service.
import { randomUUID } from 'node:crypto';
import { bilingual, Fault, faults } from '../domain/faults.js';
import { MAX_SEQUENCE } from '../domain/numbering.js';
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import { UpstreamFault } from '../upstream/client.js';
import type { NumberBlock, TaxService } from '../upstream/protocol.js';
import { recordAudit } from './audit.js';
import type { MerchantRecord, Ports, Repositories } from './ports.js';
import type { BlockAdvance, BlockRequest, NumberBlockRecord, OpenBlock } from './upload-ports.js';

/**
 * Inside the issue transaction: the merchant's numbers of one year, handed out in order from the
 * oldest open block. Only invoices that will be stored take one, and how far each block got
 * (`advances`) is written in the same transaction, so numbers stay gap-free within a block.
 */
export class YearNumbers {
  private readonly taken = new Map<string, number>();

  /** `blocks`: the merchant's open blocks of the year, oldest first, read under its lock. */
  constructor(
    readonly year: number,
    private readonly blocks: OpenBlock[],
  ) {}

  /** The next sequence; 4020 when none is left. */
  take(): number {
    const block = this.blocks.find((b) => b.next <= b.last);
    if (!block) throw new Fault(faults.NUMBERS_EXHAUSTED, { year: String(this.year) }, [], 30);
    const sequence = block.next;
    block.next += 1;
    this.taken.set(block.blockId, block.next);
    return sequence;
  }

  /** How far each block that handed out numbers got. */
  advances(): BlockAdvance[] {
    return [...this.taken].map(([blockId, next]) => ({ blockId, next }));
  }
}

export interface ReservePolicy {
  /** Never keep fewer numbers than this in reserve, however little the merchant issues. */
  floor: number;
  /** Reserve this many days of the merchant's recent issuing. */
  days: number;
  /** Largest block asked for at once. */
  maxBlock: number;
}

export const DEFAULT_RESERVE: ReservePolicy = { floor: 1_000, days: 1, maxBlock: 100_000 }; // the sandbox grants at most 100,000 at once

/** How many numbers to keep in reserve for a merchant who issued `recentPerDay` lately. */
export function reserveTarget(recentPerDay: number, policy: ReservePolicy): number {
  return Math.max(policy.floor, Math.ceil(recentPerDay * policy.days));
}

/** Stores a block (from the tax service, or entered by an operator) after checking it fits. */
export async function storeBlock(tx: Repositories, merchantId: string, block: NumberBlock, source: NumberBlockRecord['source'], at: string): Promise<NumberBlockRecord> {
  if (!(Number.isSafeInteger(block.first) && Number.isSafeInteger(block.last) && block.first >= 1 && block.last >= block.first && block.last <= MAX_SEQUENCE)) {
    throw new Fault(faults.NUMBER_BLOCK_INVALID, {
      reason: bilingual(`${block.first}–${block.last} 不在 1–${MAX_SEQUENCE} 范围之内`, `${block.first}–${block.last} is not a range within 1–${MAX_SEQUENCE}`),
    });
  }
  if (!(Number.isInteger(block.year) && block.year >= 2000 && block.year <= 2099)) throw new Fault(faults.NUMBER_BLOCK_INVALID, { reason: bilingual(`年份 ${block.year} 无效（应在 2000–2099 之间）`, `year ${block.year}`) });
  if (await tx.numberBlocks.overlaps(merchantId, block.year, block.first, block.last)) {
    throw new Fault(faults.NUMBER_BLOCK_INVALID, {
      reason: bilingual(
        `${block.year} 年号段 ${block.first}–${block.last} 与商户已有的号段重叠`,
        `${block.year} ${block.first}–${block.last} overlaps a block the merchant already holds`,
      ),
    });
  }
  const record: NumberBlockRecord = { merchantId, blockId: block.blockId, year: block.year, first: block.first, last: block.last, next: block.first, source, grantedAt: at };
  await tx.numberBlocks.insert(record);
  return record;
}

/**
 * A block the tax office assigned by other means (paper, phone during an outage), entered by an
 * operator; or a test fixture's explicit grant.
 */
export async function grantNumberBlock(ports: Ports, merchantId: string, block: Omit<NumberBlock, 'blockId'> & { blockId?: string }, actor = 'platform'): Promise<NumberBlockRecord> {
  const at = shanghaiTimestamp(ports.clock.now());
  const blockId = block.blockId ?? `granted-${block.year}-${block.first}-${block.last}`;
  return ports.store.write(async (tx) => {
    const merchant = await tx.merchants.lock(merchantId);
    if (!merchant) throw new Fault(faults.MERCHANT_NOT_FOUND, { merchant: merchantId });
    const record = await storeBlock(tx, merchantId, { ...block, blockId }, 'granted', at);
    await recordAudit(tx, ports.clock, { merchantId, actor, action: 'numbers.granted', subject: blockId, detail: { year: block.year, first: block.first, last: block.last } });
    return record;
  });
}

export interface RefillResult {
  merchantId: string;
  year: number;
  remaining: number;
  target: number;
  fetched?: NumberBlockRecord;
}

/**
 * Tops up one merchant's reserve for the current year (and for next year in its last days) when it
 * is below the target. The network call happens outside any transaction; the block is stored after.
 * Each request is written down before it is sent and crossed off with its block (migration 014), so
 * a block the tax service granted is never left unused: a request still written down (its process
 * was killed mid-call, or the answer was lost) is sent again first, with its id, and the tax service
 * answers with the block it granted for it, if it did.
 */
export async function refillNumbers(ports: Ports, taxService: TaxService, merchant: MerchantRecord, policy: ReservePolicy = DEFAULT_RESERVE): Promise<RefillResult[]> {
  const now = ports.clock.now();
  const today = shanghaiDate(now);
  const year = Number(today.slice(0, 4));
  const recent = await recentPerDay(ports, merchant.id, now);
  const target = reserveTarget(recent, policy);
  const years = [year];
  // From 25 December on, next year's series is fetched too, so New Year's Eve can go offline.
  if (today.slice(5) >= '12-25') years.push(year + 1);
  const results: RefillResult[] = [];
  const requests = await ports.store.read.numberBlocks.requests(merchant.id);
  // A block of a year gone by numbers nothing any more.
  for (const request of requests.filter((r) => r.year < year)) await settleRequest(ports, merchant, request);
  for (const y of years) {
    const { remaining } = await ports.store.read.numberBlocks.reserve(merchant.id, y);
    const result: RefillResult = { merchantId: merchant.id, year: y, remaining, target };
    const take = async (request: BlockRequest) => {
      result.fetched = await fetchBlock(ports, taxService, merchant, request);
      result.remaining += result.fetched.last - result.fetched.first + 1;
    };
    for (const request of requests.filter((r) => r.year === y)) await take(request);
    // Up to twice the target, so a refill is not needed again at once; several blocks when one is too small.
    for (let blocks = 0; result.remaining < target && blocks < 20; blocks++) {
      const request: BlockRequest = { requestId: randomUUID(), year: y, size: Math.min(policy.maxBlock, Math.max(target * 2 - result.remaining, policy.floor)) };
      await ports.store.write((tx) => tx.numberBlocks.addRequest(merchant.id, request, shanghaiTimestamp(ports.clock.now())));
      await take(request);
    }
    results.push(result);
  }
  return results;
}

/**
 * Sends a request written down before and stores its block, crossing the request off in the same
 * transaction. A request the tax service finds malformed (it can never be granted), or whose block
 * cannot be stored, is crossed off too: sent again, it would meet the same answer at every top-up
 * and hold every later one back. Any other failure keeps it, to be sent again: the tax service may
 * have granted its block (a lost answer, a 404 from a proxy in between).
 */
async function fetchBlock(ports: Ports, taxService: TaxService, merchant: MerchantRecord, request: BlockRequest): Promise<NumberBlockRecord> {
  let block: NumberBlock;
  try {
    block = await taxService.allocateBlock(merchant.taxId, request.year, request.size, request.requestId);
  } catch (error) {
    if (error instanceof UpstreamFault && error.spec === faults.UPSTREAM_REQUEST_REFUSED && error.upstreamCode === 'BAD_REQUEST') await settleRequest(ports, merchant, request);
    throw error;
  }
  const at = shanghaiTimestamp(ports.clock.now());
  try {
    return await ports.store.write(async (tx) => {
      const stored = await storeBlock(tx, merchant.id, block, 'upstream', at);
      await tx.numberBlocks.settleRequest(merchant.id, request.requestId);
      await recordAudit(tx, ports.clock, { merchantId: merchant.id, actor: 'system', action: 'numbers.allocated', subject: block.blockId, detail: { year: block.year, first: block.first, last: block.last } });
      return stored;
    });
  } catch (error) {
    if (error instanceof Fault && error.spec === faults.NUMBER_BLOCK_INVALID) await settleRequest(ports, merchant, request);
    throw error;
  }
}

function settleRequest(ports: Ports, merchant: MerchantRecord, request: BlockRequest): Promise<void> {
  return ports.store.write((tx) => tx.numberBlocks.settleRequest(merchant.id, request.requestId));
}

/** Invoices per day lately: the larger of yesterday's count and today's so far scaled to a whole day. */
async function recentPerDay(ports: Ports, merchantId: string, now: Date): Promise<number> {
  const today = shanghaiDate(now);
  const yesterday = shanghaiDate(new Date(now.getTime() - 86_400_000));
  const [t, y] = await Promise.all([ports.store.read.usage.get(merchantId, `D${today}`), ports.store.read.usage.get(merchantId, `D${yesterday}`)]);
  const startOfDay = Date.parse(`${today}T00:00:00+08:00`);
  const dayFraction = Math.max((now.getTime() - startOfDay) / 86_400_000, 1 / 24); // at least an hour, so the first minutes do not explode
  return Math.max(y.invoiceCount, Math.ceil(t.invoiceCount / dayFraction));
}
