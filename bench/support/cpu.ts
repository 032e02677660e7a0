// CPU time of processes, read from /proc, for the benchmarks' reports: what the server, the
// database and the sandbox tax service each used while they were measured.
import { readFileSync } from 'node:fs';
import { processTree } from '../../test/support/server-process.js';

/** CPU seconds (user + system) used so far by these processes and (unless `descendants` is false) their descendants. */
export function cpuSeconds(pids: number[], descendants = true): number {
  let total = 0;
  for (const member of descendants ? pids.flatMap(processTree) : pids) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
    } catch {
      // the process ended between listing and reading
    }
  }
  return total;
}
