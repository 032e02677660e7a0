// The background process's nice value, outside and inside SQLite's write lock. Run in child
// processes: a nice value set here would slow this test runner for good.
import { spawnSync } from 'node:child_process';
import { getPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function nodeScript(script: string, prefix: string[] = []): string {
  const command = [...prefix, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  const child = spawnSync(command[0]!, command.slice(1), { cwd: repoRoot, encoding: 'utf8' });
  expect(child.status, child.stderr).toBe(0);
  return child.stdout;
}

/** Whether a process here may lower its nice value again (root with CAP_SYS_NICE, or a nice limit that allows it). */
const privileged = nodeScript(`
  import { getPriority, setPriority } from 'node:os';
  const start = getPriority();
  setPriority(0, start + 1);
  try { setPriority(0, start); console.log('yes'); } catch { console.log('no'); }`).trim() === 'yes';
const started = getPriority();

/** A process that may lower no nice value: a nice limit of 0 and, for root, no CAP_SYS_NICE. */
const withoutPrivilege = ['prlimit', '--nice=0:0', ...(process.getuid?.() === 0 ? ['setpriv', '--bounding-set=-sys_nice', '--inh-caps=-sys_nice'] : [])];

/** The calling thread's nice value: at the start, once niced, with the lock taken, with it let go. */
function priorities(nice: number, { startAt, prefix }: { startAt?: number; prefix?: string[] } = {}): { hold: boolean; seen: number[] } {
  return JSON.parse(nodeScript(`
    import { getPriority, setPriority } from 'node:os';
    import { niceOutsideWriteLock } from './src/ops/lock-priority.ts';
    ${startAt === undefined ? '' : `setPriority(0, ${startAt});`}
    const seen = [getPriority()];
    const hold = niceOutsideWriteLock(${nice});
    seen.push(getPriority());
    hold?.taken();
    seen.push(getPriority());
    hold?.released();
    seen.push(getPriority());
    console.log(JSON.stringify({ hold: hold !== undefined, seen }));`, prefix)) as { hold: boolean; seen: number[] };
}

describe('the background process holds the write lock at the priority it was started with', () => {
  it.runIf(privileged && started < 10)('niced outside the lock, back to where it started inside it, niced again once it is let go', () => {
    expect(priorities(10)).toEqual({ hold: true, seen: [started, 10, started, 10] });
  });

  it.runIf(privileged && started <= 3)('started niced already, goes back to that, never below it', () => {
    expect(priorities(10, { startAt: 3 })).toEqual({ hold: true, seen: [3, 10, 3, 10] });
  });

  it.runIf(started <= 12)('started at or past the nice value asked for, stays where it is and moves at no lock', () => {
    expect(priorities(10, { startAt: 12 })).toEqual({ hold: false, seen: [12, 12, 12, 12] });
  });

  it.runIf(started < 10)('not allowed to lower its nice value, stays niced throughout', () => {
    expect(priorities(10, { prefix: withoutPrivilege })).toEqual({ hold: false, seen: [started, 10, 10, 10] });
  });
});
