// How the tax-service workers' lanes take turns around the client's circuit breaker: while it is
// open nobody claims work; once it is half-open one lane of a handler claims the batch that carries
// the probe and its other lanes wait for its answer; and a group the circuit refused is a short
// pause for the lane, never a failure that would make it back off for as long as the outage lasted,
// and its jobs are due again at once; a flow-control refusal is a pause of the wait it names.
import { describe, expect, it } from 'vitest';
import { circuitNotBefore, eachGroup, retryDelayMs } from '../../src/app/upstream-jobs.js';
import type { OutboxJob } from '../../src/app/ports.js';
import { faults } from '../../src/domain/faults.js';
import { UpstreamFault } from '../../src/upstream/client.js';
import { CircuitBreaker } from '../../src/upstream/circuit-breaker.js';
import type { TaxService } from '../../src/upstream/protocol.js';

const down = { code: faults.UPSTREAM_UNREACHABLE.code, message: 'refused' };

/** A client whose circuit (open for 1 s after one failure) runs on a clock the test moves. */
function client() {
  let now = 1_000_000;
  const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 1_000, now: () => now });
  const taxService = { circuit: () => breaker.snapshot() } as unknown as TaxService;
  const advance = (ms: number) => (now += ms);
  /** A call fails: the circuit opens. */
  const fail = () => (breaker.tryAcquire(), breaker.failure(down));
  /** A call failed a second ago: the circuit is half-open, and every lane's sleep ends now. */
  const halfOpen = () => (fail(), advance(1_000));
  return { breaker, taxService, now: () => now, advance, fail, halfOpen };
}

describe('lanes around the circuit breaker', () => {
  it('claims nothing while the circuit is open, and says for how long', () => {
    const c = client();
    c.fail();
    const lane = circuitNotBefore(c.taxService, c.now);
    expect(lane(true)).toBe(1_000);
    c.advance(400);
    expect(lane(true)).toBe(600);
  });

  it('gives the half-open probe to one of a handler\'s lanes, the others wait for its answer', () => {
    const c = client();
    c.halfOpen();
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
    const c = client();
    c.halfOpen();
    const [voids, uploads] = [circuitNotBefore(c.taxService, c.now), circuitNotBefore(c.taxService, c.now)];
    expect(voids(true)).toBe(0); // no void is waiting: it claims nothing and never calls
    expect(uploads(true)).toBe(0); // an upload lane still sends the probe
  });

  it('gives no turn to a lane that only asks how long to wait (after a failure) and will not claim', () => {
    const c = client();
    c.halfOpen();
    const lanes = circuitNotBefore(c.taxService, c.now);
    expect(lanes(false)).toBe(0); // it backs off its own failure instead
    expect(lanes(true)).toBe(0); // the turn is still free for a lane that claims
    expect(lanes(true)).toBeGreaterThan(0);
  });

  it('lets another lane take the turn when the lane given it sent nothing, and gives a new turn at the next half-open', () => {
    const c = client();
    c.halfOpen();
    const lanes = circuitNotBefore(c.taxService, c.now);
    expect(lanes(true)).toBe(0); // the first lane found no work and never calls
    expect(lanes(true)).toBeGreaterThan(0);
    c.advance(1_000);
    expect(lanes(true)).toBe(0); // the turn has passed to the next lane that asks
    c.fail(); // its probe failed: open again
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

  it('passes on the longest pause the tax service asked for, a second at most: the client holds that seller\'s next submission, and the lane serves the others', async () => {
    expect(await eachGroup(groups, async (merchantId) => (merchantId === 'm2' ? 600 : 0))).toEqual({ pauseMs: 600 });
    expect(await eachGroup(groups, async (merchantId) => (merchantId === 'm2' ? 60_000 : 0))).toEqual({ pauseMs: 1_000 });
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

  it('takes a group refused for flow control (nothing processed) as a short pause, not a failure: the wait is that seller\'s only', async () => {
    for (const [seconds, pauseMs] of [['0.25', 250], ['60', 1_000]] as const) {
      const flowControl = new UpstreamFault(faults.UPSTREAM_FLOW_CONTROL, { seconds }, false, 'FLOW_CONTROL', Math.ceil(Number(seconds)));
      const result = await eachGroup(groups, async (merchantId) => {
        if (merchantId === 'm2') throw flowControl;
        return 0;
      });
      expect(result).toEqual({ pauseMs });
    }
  });
});

describe('when jobs a round gave back are due again', () => {
  const backoff = { backoffMs: 1_000, maxBackoffMs: 60_000 };
  const serverError = new UpstreamFault(faults.UPSTREAM_SERVER_ERROR, { status: '503' }, false);

  it('after the backoff for their attempts when the tax service failed', () => {
    for (let i = 0; i < 20; i++) {
      expect(retryDelayMs(serverError, 1, backoff)).toBeGreaterThanOrEqual(500);
      expect(retryDelayMs(serverError, 30, backoff)).toBeGreaterThanOrEqual(30_000);
    }
  });

  it('after exactly the pause flow control asked for, with no backoff on top, however many attempts the jobs had', () => {
    const flowControl = new UpstreamFault(faults.UPSTREAM_FLOW_CONTROL, { seconds: '120' }, false, undefined, 120);
    expect(retryDelayMs(flowControl, 1, backoff)).toBe(120_000);
    const restOfAWait = new UpstreamFault(faults.UPSTREAM_FLOW_CONTROL, { seconds: '0.25' }, false, undefined, 1);
    for (let i = 0; i < 20; i++) expect(retryDelayMs(restOfAWait, 30, backoff)).toBe(250);
  });

  it('at once when the circuit refused the round: it reached nobody, however many attempts the jobs had', () => {
    const refused = new UpstreamFault(faults.UPSTREAM_CIRCUIT_OPEN, { until: 'soon' }, false, undefined, 1);
    expect(retryDelayMs(refused, 30, backoff)).toBe(0);
  });
});
