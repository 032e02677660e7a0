// Invoice dates are legal dates in China: always Asia/Shanghai (UTC+8, no daylight saving),
// whatever the server's own time zone is.
const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000;

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** "2026-11-22T08:03:01.123+08:00" — the instant, written in Shanghai local time. */
export function shanghaiTimestamp(at: Date): string {
  const local = new Date(at.getTime() + SHANGHAI_OFFSET_MS).toISOString();
  return `${local.slice(0, 23)}+08:00`;
}

/** The calendar date in Shanghai, "YYYY-MM-DD". */
export function shanghaiDate(at: Date): string {
  return new Date(at.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 10);
}

/** The calendar month in Shanghai, "YYYY-MM". */
export function shanghaiMonth(at: Date): string {
  return shanghaiDate(at).slice(0, 7);
}

/** Parses "YYYY-MM-DD" strictly (a real calendar date) or returns undefined. */
export function parseCalendarDate(text: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const parsed = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === text ? text : undefined;
}
