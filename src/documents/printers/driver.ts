// What the print queue needs from a printer. Jobs are handed over HELD and released in a second
// step, after the printer's id for the job has been stored: a process that dies between the two
// leaves a held job that never prints (and that the next attempt finds by its title and adopts),
// never an unknown job that might print a second time.
import { Fault, withOriginal, type Bilingual } from '../../domain/faults.js';

/** What the printer says about one job. */
export type RemoteJobState = 'held' | 'pending' | 'printing' | 'printed' | 'cancelled' | 'unknown';

export type Readiness = { ready: true } | { ready: false; reason: Bilingual };

export interface PrinterDriver {
  /** Whether the printer takes jobs right now (enabled, accepting, reachable), or why not. */
  readiness(): Promise<Readiness>;
  /** Hands the document over, held; returns the printer's id for the job. */
  submitHeld(document: Buffer, title: string): Promise<string>;
  /** Lets a held job print. */
  release(externalId: string): Promise<void>;
  state(externalId: string): Promise<RemoteJobState>;
  /** A held or waiting job with this title (after a crash between submitting and recording). */
  findHeld(title: string): Promise<string | undefined>;
  /** Cancels the job and says what it is afterwards: cancelled, or printed when it was too late. */
  cancel(externalId: string): Promise<RemoteJobState>;
}

/** What went wrong when the printing system itself failed (a command missing, CUPS down), in both languages. */
export function printingProblem(error: unknown): Bilingual {
  if (error instanceof Fault) return error.inBoth();
  return withOriginal('打印系统出错', (error as Error).message.slice(0, 200));
}
