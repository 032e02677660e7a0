// Background upkeep per merchant, in every server process: keep the number reserve topped up
// (number-blocks.ts), refresh the tax service's terms (contingency limits, 授信额度 R9), and raise
// the 80 % contingency warnings. One process at a time per merchant (a job lease), so several
// instances never fetch blocks for the same merchant at once. A failure is logged with its fault
// code and tried again at the next round; issuing never waits for any of this.
//
// Between rounds a cheap read every second finds merchants whose reserve fell below the floor and
// tops them up at once: a merchant issuing 200 a second empties a reserve of 1,000 in five seconds,
// and would otherwise be refused (4020) until the next round, with the tax service online.
import { serializeContingencyTerms, type ContingencyLimits } from '../domain/contingency.js';
import { Fault } from '../domain/faults.js';
import { invoiceKinds } from '../domain/invoice.js';
import { shanghaiDate, shanghaiTimestamp } from '../domain/time.js';
import type { TaxService } from '../upstream/protocol.js';
import { recordAudit } from './audit.js';
import { markOnline, warnNearLimits } from './contingency.js';
import { noteReach } from './upstream-jobs.js';
import { DEFAULT_RESERVE, refillNumbers, type RefillResult, type ReservePolicy } from './number-blocks.js';
import type { RunnerLog } from './outbox-runner.js';
import { leaseOwner } from './process-identity.js';
import type { MerchantRecord, Ports } from './ports.js';

export interface UpkeepOptions {
  /** Time between rounds. */
  intervalMs?: number;
  /** Time between checks for reserves below the floor (topped up at once, between rounds). */
  lowReserveCheckMs?: number;
  /** Terms older than this are fetched again. */
  termsMaxAgeMs?: number;
  reserve?: ReservePolicy;
  owner?: string;
  log?: RunnerLog;
}

export interface Upkeep {
  /** One round over every merchant now (start-up, tests); resolves when done. */
  runOnce(): Promise<void>;
  /** Tops up one merchant at once (a merchant just added). */
  merchant(merchant: MerchantRecord): Promise<void>;
  stop(): Promise<void>;
}

const quiet: RunnerLog = { info() {}, warn() {} };

export function createUpkeep(ports: Ports, taxService: TaxService, options: UpkeepOptions = {}): Upkeep & { start(): void } {
  const intervalMs = options.intervalMs ?? 30_000;
  const termsMaxAgeMs = options.termsMaxAgeMs ?? 10 * 60_000;
  const reserve = options.reserve ?? DEFAULT_RESERVE;
  const owner = options.owner ?? leaseOwner();
  const log = options.log ?? quiet;
  const lowReserveCheckMs = options.lowReserveCheckMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  // The lease is this process's own either way (acquire is re-entrant for its owner), so a round
  // and a low-reserve top-up of the same merchant are kept apart here.
  const inProgress = new Map<string, Promise<void>>();

  function merchant(m: MerchantRecord): Promise<void> {
    const current = inProgress.get(m.id);
    if (current) return current;
    const work = upkeepOf(m).finally(() => inProgress.delete(m.id));
    inProgress.set(m.id, work);
    return work;
  }

  async function upkeepOf(m: MerchantRecord): Promise<void> {
    const now = ports.clock.now();
    const name = `upkeep:${m.id}`;
    const taken = await ports.store.write((tx) => tx.jobLeases.acquire(name, owner, shanghaiTimestamp(now), shanghaiTimestamp(new Date(now.getTime() + 120_000))));
    if (!taken) return;
    try {
      let current = m;
      const fetchedAt = m.termsFetchedAt ? Date.parse(m.termsFetchedAt) : 0;
      if (now.getTime() - fetchedAt >= termsMaxAgeMs) current = await refreshTerms(ports, taxService, m);
      const results: RefillResult[] = await refillNumbers(ports, taxService, current, reserve);
      for (const r of results) if (r.fetched) log.info({ merchant: m.id, year: r.year, first: r.fetched.first, last: r.fetched.last, remaining: r.remaining }, 'numbers: block fetched');
      await warnNearLimits(ports, current);
    } catch (error) {
      const code = error instanceof Fault ? error.spec.code : undefined;
      log.warn({ merchant: m.id, code, err: error }, 'upkeep: tax service not reached; will retry');
      if (code !== undefined && code >= 4001 && code <= 4009) {
        const at = shanghaiTimestamp(ports.clock.now());
        // Judged as the workers judge their rounds: a refusal or a wait is no outage.
        await ports.store.write(async (tx) => {
          await tx.merchants.hold(m.id);
          await noteReach(tx, m.id, at, error);
        }).catch(() => undefined);
      }
      await warnNearLimits(ports, m).catch(() => undefined);
      throw error;
    } finally {
      await ports.store.write((tx) => tx.jobLeases.release(name, owner)).catch(() => undefined);
    }
  }

  async function runOnce(): Promise<void> {
    for (const m of await ports.store.read.merchants.list()) {
      if (stopped) return;
      await merchant(m).catch(() => undefined); // logged above; the next merchant still gets its turn
    }
  }

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  // A merchant whose top-up failed (tax service down) is tried again after 1, 2, 4 … checks, at most a round apart.
  const retryAfter = new Map<string, { at: number; failures: number }>();
  async function topUpLowReserves(): Promise<void> {
    const now = ports.clock.now();
    const below = new Set(await ports.store.read.numberBlocks.lowReserves(Number(shanghaiDate(now).slice(0, 4)), reserve.floor));
    for (const id of retryAfter.keys()) if (!below.has(id)) retryAfter.delete(id); // topped up meanwhile (a round)
    for (const id of below) {
      if (stopped) return;
      const retry = retryAfter.get(id);
      if (inProgress.has(id) || (retry && retry.at > now.getTime())) continue;
      const m = await ports.store.read.merchants.get(id);
      if (!m) continue;
      try {
        await merchant(m);
        retryAfter.delete(id);
      } catch {
        const failures = (retry?.failures ?? 0) + 1; // logged by upkeepOf
        retryAfter.set(id, { at: ports.clock.now().getTime() + Math.min(intervalMs, lowReserveCheckMs * 2 ** (failures - 1)), failures });
      }
    }
  }
  let checking: Promise<void> | undefined;
  let checks: NodeJS.Timeout | undefined;
  const startChecks = () => {
    checks = setInterval(() => {
      checking ??= topUpLowReserves()
        .catch((error: unknown) => log.warn({ err: error }, 'upkeep: could not read the number reserves; will retry'))
        .finally(() => (checking = undefined));
    }, lowReserveCheckMs);
    checks.unref();
  };

  return {
    runOnce,
    merchant,
    start() {
      running = runOnce().finally(schedule);
      startChecks();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(checks);
      await Promise.all([running?.catch(() => undefined), checking]);
    },
  };
}

/** Fetches the tax service's terms and caches them on the merchant row (audited when they change). */
export async function refreshTerms(ports: Ports, taxService: TaxService, merchant: MerchantRecord): Promise<MerchantRecord> {
  const terms = await taxService.terms(merchant.taxId);
  const contingency: ContingencyLimits[] = terms.contingency
    .filter((l) => (invoiceKinds as readonly string[]).includes(l.kind))
    .map((l) => ({ kind: l.kind, maxOfflineHours: l.maxOfflineHours, maxOfflineAmountFen: BigInt(l.maxOfflineAmountFen) }));
  const contingencyJson = serializeContingencyTerms(contingency);
  const fetchedAt = shanghaiTimestamp(ports.clock.now());
  // 授信额度 (R9): the tax service's grant, kept apart from the operator's own limit; null lifts it.
  const grantedCreditFen = terms.monthlyCreditFen === null ? null : BigInt(terms.monthlyCreditFen);
  await ports.store.write(async (tx) => {
    const current = (await tx.merchants.lock(merchant.id)) ?? merchant;
    const before = current.contingency ? serializeContingencyTerms(current.contingency) : null;
    await tx.terms.save(merchant.id, { contingencyJson, grantedCreditFen, fetchedAt });
    if (before !== contingencyJson || current.grantedCreditFen !== grantedCreditFen) {
      await recordAudit(tx, ports.clock, {
        merchantId: merchant.id, actor: 'tax-service', action: 'merchant.terms_changed', subject: merchant.id,
        detail: { contingency: JSON.parse(contingencyJson), grantedCreditFen: grantedCreditFen?.toString() ?? null },
      });
    }
    await markOnline(tx, merchant.id, fetchedAt);
  });
  return { ...merchant, contingency, grantedCreditFen, termsFetchedAt: fetchedAt };
}
