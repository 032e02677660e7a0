// How the tax-service workers' lanes take turns around the client's circuit breaker: while it is
// open nobody claims work; once it is half-open one lane of a handler claims the batch that carries
// the probe and its other lanes wait for its answer; and a group the circuit refused is a short pause for
// the lane, never a failure that would make it back off for as long as the outage lasted.
import { describe, expect, it } from 'vitest';
import { circuitNotBefore, eachGroup } from '../../src/app/upstream-jobs.js';
import type { OutboxJob } from '../../src/app/ports.js';
import { faults } from '../../src/domain/faults.js';
import { UpstreamFault } from '../../src/upstream/client.js';
import { CircuitBreaker } from '../../src/upstream/circuit-breaker.js';
import type { TaxService } from '../../src/upstream/protocol.js';

function client(openMs = 1_000) {
  let now = 1_000_000;
  const breaker = new CircuitBreaker({ failureThreshold: 1, openMs, now: () => now });
  const taxService = { circuit: () => breaker.snapshot() } as unknown as TaxService;
  return { breaker, taxService, now: () => now, advance: (ms: number) => (now += ms) };
}
const down = { code: faults.UPSTREAM_UNREACHABLE.code, message: 'refused' };

describe('lanes around the circuit breaker', () => {
  it('claims nothing while the circuit is open, and says for how long', () => {
    const c = client(1_000);
    c.breaker.tryAcquire();
    c.breaker.failure(down);
    const lane = circuitNotBefore(c.taxService, c.now);
    expect(lane(true)).toBe(1_000);
    c.advance(400);
    expect(lane(true)).toBe(600);
  });

  it('gives the half-open probe to one of a handler\'s lanes, the others wait for its answer', () => {
    const c = client(1_000);
    c.breaker.tryAcquire();
    c.breaker.failure(down);
    c.advance(1_000); // half-open: every lane's sleep ends now
    const lanes = circuitNotBefore(c.taxService, c.now); // one handler, shared by its lanes
    expect(lanes(true)).toBe(0); // the first lane claims the probe's batch
    expect(lanes(true)).toBeGreaterThan(0);
    expect(lanes(true)).toBeGreaterThan(0);
    expect(c.breaker.tryAcquire()).toBe(true); // its call goes out: the probe
    expect(lanes(true)).toBeGreaterThan(0);
    c.breaker.success();
    expect([lanes(true), lanes(true), lanes(true)]).toEqual([0, 0, 0]);
  });

  it('does not let another handler\'s lane that found no work hold this handler\'s lanes back', () => {
    const c = client(1_000);
    c.breaker.tryAcquire();
    c.breaker.failure(down);
    c.advance(1_000);
    const [voids, uploads] = [circuitNotBefore(c.taxService, c.now), circuitNotBefore(c.taxService, c.now)];
    expect(voids(true)).toBe(0); // no void is waiting: it claims nothing and never calls
    expect(uploads(true)).toBe(0); // an upload lane still sends the probe
  });

  it('gives no turn to a lane that only asks how long to wait (after a failure) and will not claim', () => {
    const c = client(1_000);
    c.breaker.tryAcquire();
    c.breaker.failure(down);
    c.advance(1_000);
    const lanes = circuitNotBefore(c.taxService, c.now);
    expect(lanes(false)).toBe(0); // it backs off its own failure instead
    expect(lanes(true)).toBe(0); // the turn is still free for a lane that claims
    expect(lanes(true)).toBeGreaterThan(0);
  });

  it('lets another lane take the turn when the lane given it sent nothing, and gives a new turn at the next half-open', () => {
    const c = client(1_000);
    c.breaker.tryAcquire();
    c.breaker.failure(down);
    c.advance(1_000);
    const lanes = circuitNotBefore(c.taxService, c.now);
    expect(lanes(true)).toBe(0); // the first lane found no work and never calls
    expect(lanes(true)).toBeGreaterThan(0);
    c.advance(1_000);
    expect(lanes(true)).toBe(0); // the turn has passed to the next lane that asks
    c.breaker.tryAcquire();
    c.breaker.failure(down); // its probe failed: open again
    expect(lanes(true)).toBe(1_000);
    c.advance(1_000);
    expect(lanes(true)).toBe(0); // a new half-open period, a new turn
    expect(lanes(true)).toBeGreaterThan(0);
  });
});

describe('a claimed batch worked group by group', () => {
  const job = (id: number): OutboxJob => ({ id, merchantId: 'm', topic: 'invoice.upload', subject: String(id), payload: '{}', attempts: 1 });
  const groups: Array<[string, OutboxJob[]]> = [['m1', [job(1)]], ['m2', [job(2)]], ['m3', [job(3)]]];
  const refusedByCircuit = new UpstreamFault(faults.UPSTREAM_CIRCUIT_OPEN, { until: 'soon' }, false, undefined, 1);
  const serverError = new UpstreamFault(faults.UPSTREAM_SERVER_ERROR, { status: '503' }, false);

  it('passes on the longest pause the tax service asked for', async () => {
    expect(await eachGroup(groups, async (merchantId) => (merchantId === 'm2' ? 3_000 : 0))).toEqual({ pauseMs: 3_000 });
  });

  it('reports the first real failure to the runner, which backs off; the other groups still run', async () => {
    const worked: string[] = [];
    const result = await eachGroup(groups, async (merchantId) => {
      worked.push(merchantId);
      if (merchantId !== 'm1') throw serverError;
      return 0;
    });
    expect(worked).toEqual(['m1', 'm2', 'm3']);
    expect(result.failure).toBe(serverError);
  });

  it('takes a group the circuit refused (it reached nobody) as a short pause, not a failure', async () => {
    const result = await eachGroup(groups, async (merchantId) => {
      if (merchantId === 'm2') throw refusedByCircuit;
      return 0;
    });
    expect(result.failure).toBeUndefined();
    expect(result.pauseMs).toBeGreaterThan(0);
    expect(result.pauseMs).toBeLessThan(1_000);
  });
});
