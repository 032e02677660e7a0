import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';

/** The lease owner name of a process of this machine that has exited (its PID is free). */
export function goneOwner(): string {
  const { pid } = spawnSync('true');
  if (!pid) throw new Error('could not run `true`');
  return `${hostname()}:${pid}:deadbeef`;
}
