// The circuit breaker opens after N failures in a row, refuses calls while open, lets exactly one
// probe through when the open time has passed, and closes on its success or opens again on failure.
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/upstream/circuit-breaker.js';

function breaker(failureThreshold = 3, openMs = 1000) {
  let now = 1_000_000;
  const b = new CircuitBreaker({ failureThreshold, openMs, now: () => now });
  return { b, advance: (ms: number) => (now += ms), now: () => now };
}
const boom = { code: 4001, message: 'refused' };

describe('circuit breaker', () => {
  it('stays closed below the threshold, and a success resets the count', () => {
    const { b } = breaker(3);
    for (let i = 0; i < 2; i++) (expect(b.tryAcquire()).toBe(true), b.failure(boom));
    b.tryAcquire();
    b.success();
    for (let i = 0; i < 2; i++) (b.tryAcquire(), b.failure(boom));
    expect(b.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('opens after the threshold, says since when, until when and the last error, and refuses calls', () => {
    const { b, now } = breaker(3, 1000);
    for (let i = 0; i < 3; i++) (b.tryAcquire(), b.failure({ code: 4002, message: `timeout ${i}` }));
    const s = b.snapshot();
    expect(s).toMatchObject({ state: 'open', since: now(), retryAt: now() + 1000, consecutiveFailures: 3 });
    expect(s.lastError).toEqual({ code: 4002, message: 'timeout 2', at: now() });
    expect(b.tryAcquire()).toBe(false);
  });

  it('lets one probe through when half-open; its success closes the circuit', () => {
    const { b, advance } = breaker(1, 1000);
    b.tryAcquire();
    b.failure(boom);
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.snapshot()).toMatchObject({ state: 'half_open', probeInFlight: false });
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false); // the probe is still out
    expect(b.snapshot()).toMatchObject({ state: 'half_open', probeInFlight: true });
    b.success();
    expect(b.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, retryAt: null, probeInFlight: false });
    expect(b.tryAcquire()).toBe(true);
  });

  it('opens again at once when the probe fails', () => {
    const { b, advance, now } = breaker(5, 1000);
    for (let i = 0; i < 5; i++) (b.tryAcquire(), b.failure(boom));
    advance(1000);
    expect(b.tryAcquire()).toBe(true);
    b.failure(boom);
    expect(b.snapshot()).toMatchObject({ state: 'open', since: now() });
    expect(b.tryAcquire()).toBe(false);
  });

  it('closes when the probe ends without a verdict on health (e.g. refused input)', () => {
    const { b, advance } = breaker(1, 10);
    b.tryAcquire();
    b.failure(boom);
    advance(10);
    expect(b.tryAcquire()).toBe(true);
    b.neutral();
    expect(b.snapshot().state).toBe('closed');
  });
});
