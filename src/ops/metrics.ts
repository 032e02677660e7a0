// Prometheus metrics (R40): request latency, issue outcomes, and the process's own health
// (CPU, memory, event-loop lag) from prom-client's default collectors.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requestDuration: Histogram<'method' | 'route' | 'status'>;
  invoicesIssued: Counter<'kind'>;
  issueFailures: Counter<'code'>;
  /** The text /metrics answers with: this process's registry, or the whole cluster's. */
  render(): Promise<string>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fapiao_' });
  // These gauges end in _total without being counters, which Prometheus' own checker refuses.
  for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) registry.removeSingleMetric(`fapiao_nodejs_${name}`);
  return {
    registry,
    render: () => registry.metrics(),
    requestDuration: new Histogram({
      name: 'fapiao_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    invoicesIssued: new Counter({ name: 'fapiao_invoices_issued_total', help: 'Invoices issued', labelNames: ['kind'], registers: [registry] }),
    issueFailures: new Counter({ name: 'fapiao_invoice_issue_failures_total', help: 'Refused or failed issue requests by fault code', labelNames: ['code'], registers: [registry] }),
  };
}
