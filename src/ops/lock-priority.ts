// The background process is niced so that issuing comes first, but while it holds SQLite's write
// lock every issue waits for it, and a niced holder waits for the CPU behind the processes that wait
// for it (priority inversion: docs/architecture.md, Processes, has what bench:drain measured). So the
// background process holds the lock at the priority it was started with and does everything else niced.
//
// Linux keeps a nice value per thread, and the write lock is taken and let go on the main thread,
// so only that thread's priority moves. Lowering a nice value needs privilege (root, CAP_SYS_NICE,
// or an RLIMIT_NICE that allows it, systemd's LimitNICE); without it the process stays niced
// throughout, as it always was.
import { getPriority, setPriority } from 'node:os';
import type { LockHold } from '../store/group-commit.js';

/**
 * Nices the calling thread to `nice` (never below its priority now) and returns the hold that puts
 * it back to that priority while it holds the write lock, or undefined when it may not go back.
 */
export function niceOutsideWriteLock(nice: number): LockHold | undefined {
  const normal = getPriority();
  const niced = Math.max(normal, nice);
  setPriority(0, niced);
  if (niced === normal || !mayLowerTo(normal)) return undefined;
  setPriority(0, niced);
  // A change refused later (a privilege taken away) throws; the committer ignores it (group-commit.ts).
  return { taken: () => setPriority(0, normal), released: () => setPriority(0, niced) };
}

function mayLowerTo(priority: number): boolean {
  try {
    setPriority(0, priority);
    return true;
  } catch {
    return false;
  }
}
