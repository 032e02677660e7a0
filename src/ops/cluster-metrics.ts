// With one server process per core, /metrics must speak for all of them. The worker that gets the
// scrape asks the primary, which collects the registry of every worker that has reported and
// answers with the sum (prom-client's aggregation rules), its own registry included (scheduled
// backups, worker restarts).
//
// Counters never go down. Prometheus reads a counter that falls as a reset, and rate() and
// increase() then spike, so the sum must not lose what a worker counted when the worker dies: the
// primary keeps each worker's last report and, when the worker exits, adds its counters and
// histograms to the totals of the departed (its gauges go with it: a dead process has no memory
// or event loop). Every worker also reports every REPORT_INTERVAL_MS, so what a process killed
// with kill -9 had counted is lost only for its last few seconds, whenever the last scrape was.
//
// Why not prom-client's own cluster messaging: its primary asks every connected worker, including
// one still loading its modules, which never answers, so a scrape during a start or a restart
// waited 5 s and failed; and its workers answer only once they have built an AggregatorRegistry of
// their own. A worker that has not reported yet has counted nothing, so leaving it out is exact.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** A worker's registry (worker → primary), on its own or answering a collection (`id`). */
const REPORT = 'fapiao:metrics-report';
const COLLECT = 'fapiao:metrics-collect?';
const REQUEST = 'fapiao:metrics?';
const ANSWER = 'fapiao:metrics!';
/** How long the primary waits for a worker's registry before the scrape fails. */
const COLLECT_TIMEOUT_MS = 3_000;
/** How often a worker reports unasked: the most of its counts a kill -9 can lose. */
export const REPORT_INTERVAL_MS = 5_000;

/**
 * One metric as `registry.getMetricsAsJSON()` gives it. prom-client's types call `type` an enum;
 * at run time it is the name ('counter', 'gauge', 'histogram', 'summary').
 */
interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

interface MetricsMessage {
  type: string;
  id?: number;
  text?: string;
  error?: string;
  metrics?: MetricJson[];
}

/**
 * The callback for every send: without one, a send just as the other side goes throws (an 'error'
 * event nobody listens to) and takes this process down; the loss itself is handled where that
 * side's exit or disconnect is.
 */
const ignoreSendError = () => {};

async function metricsOf(registry: Registry): Promise<MetricJson[]> {
  return (await registry.getMetricsAsJSON()) as unknown as MetricJson[];
}

/** The counters and histograms of workers that have exited, summed series by series. */
class DepartedTotals {
  private readonly metrics = new Map<string, MetricJson>();
  /** `name metricName labels` → the series in `metrics`, so a total is added to in place. */
  private readonly series = new Map<string, MetricJson['values'][number]>();

  add(lastReport: MetricJson[]): void {
    for (const metric of lastReport) {
      if (metric.type !== 'counter' && metric.type !== 'histogram') continue;
      let total = this.metrics.get(metric.name);
      if (!total) this.metrics.set(metric.name, (total = { ...metric, values: [] }));
      for (const value of metric.values) {
        const labels = Object.entries(value.labels).sort(([a], [b]) => (a < b ? -1 : 1));
        const key = JSON.stringify([metric.name, value.metricName ?? '', labels]);
        const existing = this.series.get(key);
        if (existing) {
          existing.value += value.value;
        } else {
          const copy = { ...value };
          this.series.set(key, copy);
          total.values.push(copy);
        }
      }
    }
  }

  all(): MetricJson[] {
    return [...this.metrics.values()];
  }
}

/** In the primary: answer workers' requests for the whole cluster's metrics. */
export function serveClusterMetrics(primaryRegistry: Registry): void {
  const lastReports = new Map<Worker, MetricJson[]>(); // live workers that have reported, and their newest report
  const departed = new DepartedTotals();
  const collecting = new Map<string, { worker: Worker; done: () => void }>(); // `${worker id}:${id}`
  let next = 0;

  cluster.on('exit', (worker) => {
    const last = lastReports.get(worker);
    lastReports.delete(worker);
    if (last) departed.add(last);
    // A scrape waiting for this worker goes on without it: its counts are among the departed now.
    for (const pending of collecting.values()) if (pending.worker === worker) pending.done();
  });

  const collectFrom = (worker: Worker, id: number) =>
    new Promise<void>((resolve, reject) => {
      const key = `${worker.id}:${id}`;
      const timer = setTimeout(() => {
        collecting.delete(key);
        reject(new Error(`server process ${worker.process.pid} did not hand over its metrics within ${COLLECT_TIMEOUT_MS} ms`));
      }, COLLECT_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        collecting.delete(key);
        resolve();
      };
      collecting.set(key, { worker, done });
      worker.send({ type: COLLECT, id }, undefined, undefined, ignoreSendError);
    });

  const everyone = async (): Promise<string> => {
    const id = ++next;
    await Promise.all([...lastReports.keys()].filter((worker) => worker.isConnected()).map((worker) => collectFrom(worker, id)));
    const own = await metricsOf(primaryRegistry);
    // Read after the last await: a worker that exits meanwhile is in exactly one of the two.
    return AggregatorRegistry.aggregate([own, departed.all(), ...lastReports.values()]).metrics();
  };

  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type === REPORT) {
      if (worker.isDead()) return; // its last counts were added to the departed already
      lastReports.set(worker, message.metrics ?? []);
      if (message.id !== undefined) collecting.get(`${worker.id}:${message.id}`)?.done();
    } else if (message?.type === REQUEST) {
      everyone().then(
        (text) => worker.send({ type: ANSWER, id: message.id, text }, undefined, undefined, ignoreSendError),
        (error: Error) => worker.send({ type: ANSWER, id: message.id, error: error.message }, undefined, undefined, ignoreSendError),
      );
    }
  });
}

/** In a worker: report this process's registry to the primary, and offer a way to fetch everyone's. */
export function clusterMetricsSource(registry: Registry): () => Promise<string> {
  // One report after another, so the primary never receives older counts after newer ones.
  let reporting = Promise.resolve();
  const report = (id?: number) => {
    reporting = reporting
      .then(() => metricsOf(registry))
      .then((metrics) => void process.send?.({ type: REPORT, id, metrics }, undefined, undefined, ignoreSendError))
      .catch(() => {}); // a collection left unanswered fails its scrape by name when it times out
  };
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: MetricsMessage) => {
    if (message?.type === COLLECT) {
      report(message.id);
    } else if (message?.type === ANSWER && message.id !== undefined) {
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.text !== undefined) pending?.resolve(message.text);
      else pending?.reject(new Error(message.error ?? 'metrics unavailable'));
    }
  });
  report(); // the first report also tells the primary this process is ready to be collected
  setInterval(report, REPORT_INTERVAL_MS).unref();
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      process.send?.({ type: REQUEST, id }, undefined, undefined, (error) => {
        if (!error) return;
        waiting.delete(id);
        reject(error); // the primary is gone: this process is stopping
      });
    });
}
