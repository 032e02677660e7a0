// Metrics of the tax-service side (R40): the circuit breaker's state, read when scraped.
import { Gauge, type Registry } from 'prom-client';
import type { TaxServiceClient } from './client.js';

const STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export function registerUpstreamMetrics(registry: Registry, client: TaxServiceClient): void {
  new Gauge({
    name: 'fapiao_upstream_circuit_state',
    help: 'The tax-service circuit breaker of this process: 0 closed, 1 half-open, 2 open',
    registers: [registry],
    aggregator: 'max', // across a cluster's processes: the worst one
    collect() {
      this.set(STATE_VALUE[client.circuit().state]);
    },
  });
  new Gauge({
    name: 'fapiao_upstream_consecutive_failures',
    help: 'Failed calls to the tax service in a row, as the circuit breaker counts them',
    registers: [registry],
    aggregator: 'max', // across a cluster's processes: the worst one
    collect() {
      this.set(client.circuit().consecutiveFailures);
    },
  });
}
