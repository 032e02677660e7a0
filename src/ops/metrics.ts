// Prometheus metrics (R40): request latency, issue outcomes, and the process's own health
// (CPU, memory, event-loop lag) from prom-client's default collectors.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommitObserver } from '../store/group-commit.js';

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

/** Which work a server process does: its commits are told apart by it (`role` in /metrics). */
export type CommitRole = 'http' | 'background' | 'both';

/**
 * The embedded database's group commits (group-commit.ts), registered only by a server on SQLite.
 * Labelled with the process's role: issuing waits for the write lock in the HTTP processes, and what
 * it waits behind is often the background process's bookkeeping (uploads draining a backlog).
 */
export function sqliteCommitMetrics(registry: Registry, role: CommitRole): CommitObserver {
  const phases = new Histogram({
    name: 'fapiao_sqlite_commit_phase_seconds',
    help: "Per group commit of the embedded database, by the committing process's role: from asking for SQLite's write lock to holding it (lock_wait), statements and commit (transaction), commit to the WAL's sync handled (durable)",
    labelNames: ['role', 'phase'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const units = new Histogram({
    name: 'fapiao_sqlite_commit_batch_units',
    help: "Writes committed by one group commit of the embedded database (an issue batch of any size is one), by the committing process's role",
    labelNames: ['role'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 200],
    registers: [registry],
  });
  // Bound once: every commit observes all four, and a bound child skips hashing the labels.
  const [lockWait, transaction, durable] = (['lock_wait', 'transaction', 'durable'] as const).map((phase) => phases.labels(role, phase));
  const roleUnits = units.labels(role);
  return {
    committed(batch) {
      roleUnits.observe(batch.units);
      lockWait!.observe(batch.lockWaitMs / 1000);
      transaction!.observe(batch.transactionMs / 1000);
      durable!.observe(batch.durableMs / 1000);
    },
  };
}
