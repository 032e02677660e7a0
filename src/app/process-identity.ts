// Who holds a lease, and whether that holder is gone. Leases (outbox jobs, named jobs, the backup
// lease file) run out by themselves, but only after their full term: a background process killed
// while holding upload jobs would leave them untouched for a minute, an upkeep round's lease for
// two, the daily reconciliation's for thirty. A process restarted on the same machine can see that
// the holder no longer runs and end its leases at once.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Ports } from './ports.js';

/** Tells this process from an earlier one that had the same PID (a container restarts as PID 1). */
export const PROCESS_TOKEN = randomUUID().slice(0, 8);

export interface LeaseHolder {
  host: string;
  pid: number;
  token?: string;
}

/** This process as a lease owner: host:pid:token (a runner may add `/lane`). */
export function leaseOwner(): string {
  return `${hostname()}:${process.pid}:${PROCESS_TOKEN}`;
}

/** The holder a lease owner names; undefined for a name in another form (never taken for gone). */
export function parseLeaseOwner(owner: string): LeaseHolder | undefined {
  const match = /^(.+):(\d+):([0-9a-f]{8})(?:\/.*)?$/.exec(owner);
  return match ? { host: match[1]!, pid: Number(match[2]), token: match[3]! } : undefined;
}

/**
 * Whether the holder certainly no longer runs: only a process of this machine can be checked. Our
 * own PID with another token is an earlier life of this process. A PID reused by an unrelated
 * process reads as alive: the lease then simply runs its term.
 */
export function holderIsGone(holder: LeaseHolder): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return holder.token !== PROCESS_TOKEN;
  return !processAlive(holder.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Ends the leases of this machine's processes that are gone (a restarted background process calls it). */
export async function endLeasesOfGoneProcesses(ports: Pick<Ports, 'store'>, at: string): Promise<{ owners: string[]; leases: number }> {
  const holders = await ports.store.read.leases.holders(at);
  const gone = holders.filter((owner) => {
    const holder = parseLeaseOwner(owner);
    return holder !== undefined && holderIsGone(holder);
  });
  if (gone.length === 0) return { owners: [], leases: 0 };
  const leases = await ports.store.write((tx) => tx.leases.expire(gone, at));
  return { owners: gone, leases };
}
