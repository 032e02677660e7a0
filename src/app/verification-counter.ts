// Counting verifications cheaply (5 per invoice per day, R22). A durable write per verification
// would make every public lookup wait for a commit to reach the disk. Instead each process keeps
// the day's counts in memory, starting from what the database holds, and adds what it counted to
// the database every FLUSH_MS (250 ms) in one transaction; the answer of that write brings back
// what the other instances counted meanwhile. Across instances the limit can thus be overshot by
// what they count within one flush interval; a crash forgets at most one interval of counts.
// Both only ever allow a verification or two more, never fewer.
import type { Ports } from './ports.js';

const FLUSH_MS = 250;

interface Entry {
  merchantId: string;
  number: string;
  day: string;
  base: number; // the database's count when last read or written
  pending: number; // counted here, not yet written
  writing: number; // of `pending`, what the flush under way is writing
}

export class VerificationCounter {
  private readonly entries = new Map<string, Promise<Entry>>();
  /** Entries counted since the last flush: a flush touches only these, not every entry of the day. */
  private readonly dirty = new Set<Entry>();
  private day = '';
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly ports: Pick<Ports, 'store'>, private readonly flushMs = FLUSH_MS) {}

  /**
   * Counts one verification and gives the day's count including it. `stored` is the database's
   * count if the caller just read it: it saves a read the first time this process sees the
   * invoice, and brings in what other processes and instances wrote since this one last wrote.
   */
  async count(merchantId: string, number: string, day: string, stored?: number): Promise<number> {
    const key = `${day}\u0000${merchantId}\u0000${number}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const base = stored !== undefined ? Promise.resolve(stored) : this.ports.store.read.verification.current(merchantId, number, day);
      entry = base.then((count) => ({ merchantId, number, day, base: count, pending: 0, writing: 0 }));
      entry.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
    }
    const e = await entry;
    // What a flush under way is writing may or may not be in `stored` yet; taken as not, the
    // count errs by allowing more, never fewer.
    if (stored !== undefined) e.base = Math.max(e.base, stored - e.writing);
    e.pending += 1;
    this.dirty.add(e);
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    this.timer.unref?.();
    return e.base + e.pending;
  }

  /** Writes what was counted; also drops the entries of days gone by. */
  flush(): Promise<void> {
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      const due = [...this.dirty];
      this.dirty.clear();
      if (due.length === 0) return;
      this.forgetDaysBefore(due.reduce((max, e) => (e.day > max ? e.day : max), ''));
      const taken = due.map((e) => (e.writing = e.pending));
      try {
        const totals = await this.ports.store.write(async (tx) => {
          const written: number[] = [];
          for (const [i, e] of due.entries()) written.push(await tx.verification.add(e.merchantId, e.number, e.day, taken[i]!));
          return written;
        });
        due.forEach((e, i) => {
          e.pending -= taken[i]!;
          e.base = totals[i]!; // includes what other instances wrote
        });
      } catch {
        // The database is away: keep the counts and try again at the next verification.
        for (const e of due) this.dirty.add(e);
      } finally {
        for (const e of due) e.writing = 0;
      }
    });
    return this.flushing;
  }

  /** Once a new day is seen, the counts of earlier days are of no more use here. */
  private forgetDaysBefore(today: string): void {
    if (today <= this.day) return;
    this.day = today;
    for (const key of this.entries.keys()) if (key.split('\u0000')[0]! < today) this.entries.delete(key);
  }
}
