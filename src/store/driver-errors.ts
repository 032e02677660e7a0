// Driver errors are translated into catalogue faults here and nowhere else.
import { Fault, faults } from '../domain/faults.js';

export function translateDriverError(error: unknown): unknown {
  if (error instanceof Fault) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === '53100') return new Fault(faults.STORAGE_FULL);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  }
  return error;
}
