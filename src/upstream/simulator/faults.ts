// Fault injection for the sandbox tax service. The faults are rows in the sandbox's database, so
// every process serving the sandbox sees the same ones (each caches them for a moment). Several
// modes may be on at once; each applies to a share `rate` of requests and may expire by itself.
import type { SandboxDb } from './db.js';

export const FAULT_MODES = {
  down: 'refuse connections: the connection is reset before any answer, nothing is processed',
  hang: 'accept the request and never answer (until the fault is cleared); nothing is processed',
  slow: 'process at once, answer delay_ms (default 2000) later: a client that times out does not know it went through',
  error: 'answer HTTP 500 without processing',
  lose_response: 'process and commit, then reset the connection: the client never hears the answer',
  double_ack: 'process an upload twice, as if delivered twice: each record is acknowledged twice (accepted, then duplicate); a void is applied twice (answered already_voided)',
  reject: 'reject records by rule (share `rate`; only of `kind`, only with a pre-tax amount of at least `min_amount_fen`, when given), reason code SANDBOX_RULE; refuse voids (share `rate`) the same way',
  flow_control: 'answer uploads with wait_seconds (default 2) and refuse (429) a submission that comes sooner',
  partial: 'leave a share `rate` of the records of each upload, and of voids, unprocessed (result "failed")',
  garbage: 'answer 200 with an HTML page instead of the protocol\'s JSON, without processing',
} as const;

export type FaultMode = keyof typeof FAULT_MODES;

export interface FaultSetting {
  mode: FaultMode;
  /** Share of requests (or records, for reject and partial) affected, 0…1. */
  rate: number;
  /** Epoch ms when the fault ends by itself; null = until cleared. */
  until: number | null;
  delayMs?: number;
  waitSeconds?: number;
  kind?: 'normal' | 'special';
  /** reject: only records whose pre-tax amount is at least this many fen. */
  minAmountFen?: string;
}

export function isFaultMode(mode: string): mode is FaultMode {
  return Object.hasOwn(FAULT_MODES, mode);
}

const CACHE_MS = 250;

export class FaultBoard {
  private cached: { at: number; faults: FaultSetting[] } | undefined;

  constructor(private readonly db: SandboxDb, private readonly now: () => number = Date.now) {}

  list(): FaultSetting[] {
    const now = this.now();
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.faults.filter((f) => f.until === null || f.until > now);
    const rows = this.db.prepare('select mode, rate, until, params from faults order by mode').all() as Array<{ mode: FaultMode; rate: number; until: number | null; params: string }>;
    const faults = rows.map((r) => ({ mode: r.mode, rate: r.rate, until: r.until, ...(JSON.parse(r.params) as object) }));
    this.cached = { at: now, faults };
    return faults.filter((f) => f.until === null || f.until > now);
  }

  /** The active setting of `mode`, when this request (or record) is hit by it. */
  hits(mode: FaultMode, random: () => number = Math.random): FaultSetting | undefined {
    const setting = this.list().find((f) => f.mode === mode);
    return setting && random() < setting.rate ? setting : undefined;
  }

  active(mode: FaultMode): FaultSetting | undefined {
    return this.list().find((f) => f.mode === mode);
  }

  set(setting: FaultSetting): void {
    const { mode, rate, until, ...params } = setting;
    this.db.prepare('insert into faults (mode, rate, until, params, set_at) values (?, ?, ?, ?, ?) on conflict (mode) do update set rate = excluded.rate, until = excluded.until, params = excluded.params, set_at = excluded.set_at')
      .run(mode, rate, until, JSON.stringify(params), this.now());
    this.cached = undefined;
  }

  clear(mode?: FaultMode): void {
    if (mode) this.db.prepare('delete from faults where mode = ?').run(mode);
    else this.db.prepare('delete from faults').run();
    this.cached = undefined;
  }
}
