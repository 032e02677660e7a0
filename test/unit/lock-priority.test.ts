// The background process's nice value, outside and inside SQLite's write lock. Run in a child
// process: a nice value set here would slow this test runner for good.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The calling thread's nice value: at the start, once niced, with the lock taken, with it let go. */
function priorities(startAt: number, nice: number, withoutPrivilege = false): { hold: boolean; seen: number[] } {
  const script = `
    import { getPriority, setPriority } from 'node:os';
    import { niceOutsideWriteLock } from './src/ops/lock-priority.ts';
    setPriority(0, ${startAt});
    const seen = [getPriority()];
    const hold = niceOutsideWriteLock(${nice});
    seen.push(getPriority());
    hold?.taken();
    seen.push(getPriority());
    hold?.released();
    seen.push(getPriority());
    console.log(JSON.stringify({ hold: hold !== undefined, seen }));`;
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  // Root without CAP_SYS_NICE may lower no nice value, as any unprivileged process.
  const command = withoutPrivilege ? ['setpriv', '--bounding-set=-sys_nice', '--inh-caps=-sys_nice', ...node] : node;
  const child = spawnSync(command[0]!, command.slice(1), { cwd: repoRoot, encoding: 'utf8' });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout) as { hold: boolean; seen: number[] };
}

const privileged = process.getuid?.() === 0;

describe('the background process holds the write lock at the priority it was started with', () => {
  it.runIf(privileged)('niced outside the lock, back to normal inside it, niced again once it is let go', () => {
    expect(priorities(0, 10)).toEqual({ hold: true, seen: [0, 10, 0, 10] });
  });

  it.runIf(privileged)('started niced already, goes back to that, never below it', () => {
    expect(priorities(3, 10)).toEqual({ hold: true, seen: [3, 10, 3, 10] });
  });

  it('started at or past the nice value asked for, stays where it is and moves at no lock', () => {
    expect(priorities(12, 10)).toEqual({ hold: false, seen: [12, 12, 12, 12] });
  });

  it('not allowed to lower its nice value, stays niced throughout', () => {
    expect(priorities(0, 10, privileged)).toEqual({ hold: false, seen: [0, 10, 10, 10] });
  });
});
