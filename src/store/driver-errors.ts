// Driver errors are translated into catalogue faults here and nowhere else.
import { Fault, faults } from '../domain/faults.js';

// PostgreSQL SQLSTATEs and socket errors that mean "the database is away right now". 25006 is a
// write sent to a server that is (again) a read-only standby: the primary is elsewhere for now;
// 57014 is our statement_timeout: the database did not get to it in time.
const UNREACHABLE = /^(08\d{3}|57P0[123]|57014|53300|25006|ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;
// node-postgres's own words for a connection that never came or has gone: these carry no code.
const CONNECTION_LOST = /timeout exceeded when trying to connect|Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error|Client was closed and is not queryable/i;

export function translateDriverError(error: unknown): unknown {
  if (error instanceof Fault) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : '';
  if (CONNECTION_LOST.test(message)) {
    return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  }
  if (typeof code !== 'string') return error;
  if (UNREACHABLE.test(code)) return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === '53100' || code === 'ENOSPC') return new Fault(faults.STORAGE_FULL);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY' || code === 'EIO') {
    return new Fault(faults.STORAGE_UNAVAILABLE, { seconds: '2' }, [], 2);
  }
  return error;
}
