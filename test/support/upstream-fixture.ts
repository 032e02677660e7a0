// For tests of the workers that talk to the tax service: the real sandbox for a describe block, and
// for each test a fresh store under test with the API in front of it (a clock that starts now, since
// the sandbox checks request timestamps) and a client of its own. Call inside `describe`.
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { OutboxRunner } from '../../src/app/outbox-runner.js';
import type { Ports } from '../../src/app/ports.js';
import type { TaxServiceClient } from '../../src/upstream/client.js';
import { movableClock, startApi, type Api } from './http.js';
import { startTestSandbox, type TestSandbox } from './sandbox.js';
import type { OpenedStore, StoreUnderTest } from './stores.js';

export interface UpstreamFixture {
  readonly sandbox: TestSandbox;
  readonly opened: OpenedStore;
  readonly api: Api;
  readonly taxService: TaxServiceClient;
  ports(): Ports;
  /** Merchant A's taxpayer ID, the seller the sandbox counts. */
  seller(): string;
  /** Stops `runner` after the test. */
  keep<R extends OutboxRunner>(runner: R): R;
  /** Runs one worker round after another until nothing is due (or the rounds run out), a minute apart (past any retry delay). */
  drain(runner: OutboxRunner, rounds?: number): Promise<void>;
  /**
   * A client of its own, enrolled, whose circuit has just opened on a real failure (a 5xx) and stays
   * open for 1 s, the service healthy again behind it: what a lane meets after another caller's failure.
   */
  clientWithOpenCircuit(): Promise<TaxServiceClient>;
}

export function upstreamFixture(kind: StoreUnderTest): UpstreamFixture {
  let sandbox: TestSandbox;
  let opened: OpenedStore;
  let api: Api;
  let taxService: TaxServiceClient;
  let runners: OutboxRunner[] = [];
  beforeAll(async () => {
    sandbox = await startTestSandbox();
  });
  afterAll(() => sandbox.close());
  beforeEach(async () => {
    opened = await kind.open();
    api = await startApi(opened.store, { clock: movableClock(new Date()) });
    taxService = sandbox.client(opened.store, api.clock);
  });
  afterEach(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    runners = [];
    await sandbox.clear();
    await api.close();
    await opened.cleanup();
  });
  return {
    get sandbox() { return sandbox; },
    get opened() { return opened; },
    get api() { return api; },
    get taxService() { return taxService; },
    ports: () => ({ store: opened.store, clock: api.clock }),
    seller: () => api.a.record.taxId,
    keep(runner) {
      runners.push(runner);
      return runner;
    },
    async clientWithOpenCircuit() {
      const client = sandbox.client(opened.store, api.clock, { failureThreshold: 1, openMs: 1_000, maxAttempts: 1 });
      await client.terms(api.a.record.taxId);
      await sandbox.fault('error');
      await client.terms(api.a.record.taxId).then(() => Promise.reject(new Error('the sandbox answered through its error fault')), () => undefined);
      await sandbox.clear();
      if (client.circuit().state !== 'open') throw new Error(`the circuit is ${client.circuit().state}, not open`);
      return client;
    },
    async drain(runner, rounds = 20) {
      for (let i = 0; i < rounds; i++) {
        const claimed = await runner.runOnce().catch(() => -1);
        if (claimed === 0) return;
        api.clock.advance(60_000);
      }
    },
  };
}
