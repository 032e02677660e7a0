// With one server process per core, /metrics must speak for all of them. The worker that gets
// the scrape asks the primary, which collects the registry of every worker that has said it is
// ready and answers with the sum (prom-client's aggregation rules), its own registry included
// (the scheduled backups it runs).
//
// Why not prom-client's own cluster messaging: its primary asks every connected worker, including
// one still loading its modules, which never answers, so a scrape during a start or a restart
// waited 5 s and failed; and its workers answer only once they have built an AggregatorRegistry of
// their own. A worker that has not said it is ready has counted nothing, so leaving it out is exact.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

const READY = 'fapiao:metrics-ready';
const REQUEST = 'fapiao:metrics?';
const ANSWER = 'fapiao:metrics!';
const COLLECT = 'fapiao:metrics-collect?';
const COLLECTED = 'fapiao:metrics-collect!';
/** How long the primary waits for a ready worker's registry before the scrape fails. */
const COLLECT_TIMEOUT_MS = 3_000;

type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  error?: string;
  metrics?: WorkerMetrics;
}

/** In the primary: answer workers' requests for the whole cluster's metrics. */
export function serveClusterMetrics(primaryRegistry: Registry): void {
  const ready = new Set<Worker>();
  const collecting = new Map<string, (metrics: WorkerMetrics) => void>(); // `${worker id}:${id}` → resolve
  let next = 0;
  cluster.on('exit', (worker) => ready.delete(worker));

  const collectFrom = (worker: Worker, id: number) =>
    new Promise<WorkerMetrics>((resolve, reject) => {
      const key = `${worker.id}:${id}`;
      const timer = setTimeout(() => {
        collecting.delete(key);
        reject(new Error(`server process ${worker.process.pid} did not hand over its metrics within ${COLLECT_TIMEOUT_MS} ms`));
      }, COLLECT_TIMEOUT_MS);
      collecting.set(key, (metrics) => {
        clearTimeout(timer);
        collecting.delete(key);
        resolve(metrics);
      });
      worker.send({ type: COLLECT, id });
    });

  const everyone = async (): Promise<string> => {
    const id = ++next;
    const registries = await Promise.all([...ready].filter((worker) => worker.isConnected()).map((worker) => collectFrom(worker, id)));
    return AggregatorRegistry.aggregate([await primaryRegistry.getMetricsAsJSON(), ...registries]).metrics();
  };

  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type === READY) ready.add(worker);
    else if (message?.type === COLLECTED) collecting.get(`${worker.id}:${message.id}`)?.(message.metrics ?? []);
    else if (message?.type === REQUEST) {
      everyone().then(
        (text) => worker.send({ type: ANSWER, id: message.id, text }),
        (error: Error) => worker.send({ type: ANSWER, id: message.id, error: error.message }),
      );
    }
  });
}

/** In a worker: offer this process's registry, and a way to fetch everyone's. */
export function clusterMetricsSource(registry: Registry): () => Promise<string> {
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: MetricsMessage) => {
    if (message?.type === COLLECT) {
      registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: COLLECTED, id: message.id, metrics }));
    } else if (message?.type === ANSWER) {
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.text !== undefined) pending?.resolve(message.text);
      else pending?.reject(new Error(message.error ?? 'metrics unavailable'));
    }
  });
  process.send?.({ type: READY });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      process.send?.({ type: REQUEST, id });
    });
}
