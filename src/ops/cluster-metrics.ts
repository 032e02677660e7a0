// With one server process per core, /metrics must speak for all of them. The worker that gets
// the scrape asks the primary, which collects every worker's registry (prom-client's aggregator)
// and answers with the sum.
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'fapiao:metrics?';
const ANSWER = 'fapiao:metrics!';

interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  error?: string;
}

/** In the primary: answer workers' requests for the whole cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: ANSWER, id: message.id, text }),
      (error: Error) => worker.send({ type: ANSWER, id: message.id, error: error.message }),
    );
  });
}

/** In a worker: offer this process's registry, and a way to fetch everyone's. */
export function clusterMetricsSource(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: MetricsMessage) => {
    if (message?.type !== ANSWER) return;
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.text !== undefined) pending?.resolve(message.text);
    else pending?.reject(new Error(message.error ?? 'metrics unavailable'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      process.send?.({ type: REQUEST, id });
    });
}
