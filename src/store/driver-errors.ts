// Driver errors are translated into catalogue faults here and nowhere else.
import { Fault, faults } from '../domain/faults.js';

// PostgreSQL SQLSTATEs and socket errors that mean "the database is away right now".
const UNREACHABLE = /^(08\d{3}|57P0[123]|53300|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/;

export function translateDriverError(error: unknown): unknown {
  if (error instanceof Fault) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : '';
  if (/timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error/i.test(message)) {
    return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  }
  if (typeof code !== 'string') return error;
  if (UNREACHABLE.test(code)) return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === '53100') return new Fault(faults.STORAGE_FULL);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  }
  return error;
}
