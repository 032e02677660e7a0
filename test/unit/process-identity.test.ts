// A lease names its holder (host:pid:token); a holder counts as gone only when this machine can see
// that it no longer runs, so a lease is never taken from a process that may still be working.
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { holderIsGone, leaseOwner, parseLeaseOwner, PROCESS_TOKEN } from '../../src/app/process-identity.js';
import { goneOwner } from '../support/processes.js';

describe('lease owners', () => {
  it('names this process by host, PID and a token of this life, with or without a lane', () => {
    const own = { host: hostname(), pid: process.pid, token: PROCESS_TOKEN };
    expect(parseLeaseOwner(leaseOwner())).toEqual(own);
    expect(parseLeaseOwner(`${leaseOwner()}/2`)).toEqual(own);
  });

  it('reads names in another form as no holder it could judge', () => {
    for (const name of ['instance-a', 'host-123-abcdef', `${hostname()}:12:ABCDEF12`, `${hostname()}:x:deadbeef`]) expect(parseLeaseOwner(name)).toBeUndefined();
  });
});

describe('a lease holder is gone', () => {
  it('when it was a process of this machine that has exited', () => {
    expect(holderIsGone(parseLeaseOwner(goneOwner())!)).toBe(true);
  });

  it('when it was an earlier life of this very PID (a container restarts as PID 1)', () => {
    const earlierToken = PROCESS_TOKEN === '00000000' ? '11111111' : '00000000';
    expect(holderIsGone({ host: hostname(), pid: process.pid, token: earlierToken })).toBe(true);
  });

  it('not when the process still runs, or is this one', () => {
    expect(holderIsGone({ host: hostname(), pid: process.ppid, token: 'deadbeef' })).toBe(false);
    expect(holderIsGone(parseLeaseOwner(leaseOwner())!)).toBe(false);
  });

  it('not when it runs on another machine, which cannot be checked from here', () => {
    const { pid } = parseLeaseOwner(goneOwner())!;
    expect(holderIsGone({ host: `not-${hostname()}`, pid, token: 'deadbeef' })).toBe(false);
  });
});
