// The real sandbox tax service on a real port, for tests of the upload side: its admin API (faults,
// terms, per-number counters) and a client that signs with keys kept in the store under test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/app/ports.js';
import type { Clock } from '../../src/domain/time.js';
import { createTaxServiceClient, type TaxServiceClient, type TaxServiceClientOptions } from '../../src/upstream/client.js';
import { storedCredentials } from '../../src/upstream/credentials.js';
import { startSandbox, type StandaloneSandbox } from '../../src/upstream/simulator/server.js';
import type { UploadCounter } from '../../src/upstream/simulator/ledger.js';

export interface TestSandbox {
  url: string;
  dataDir: string;
  /** A fresh client for `store` (its own circuit breaker), quick to give up, for tests. */
  client(store: Store, clock: Clock, options?: Partial<TaxServiceClientOptions>): TaxServiceClient;
  fault(mode: string, settings?: Record<string, unknown>): Promise<void>;
  clear(mode?: string): Promise<void>;
  setTerms(seller: string, terms: { monthly_credit_fen: string | null; contingency: Array<{ kind: 'normal' | 'special'; max_offline_hours: number; max_offline_amount_fen: string }> }): Promise<void>;
  /** What the sandbox counted per number for this seller. */
  counters(seller: string): Promise<Map<string, UploadCounter>>;
  /** Stops serving (the "restart" fault); `start` serves again on the same port and database. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestSandbox(port = 0): Promise<TestSandbox> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-sandbox-'));
  let sandbox: StandaloneSandbox | undefined = await startSandbox({ dataDir, port });
  const url = sandbox.url;
  const boundPort = Number(new URL(url).port);
  const admin = async (method: string, path: string, body?: object) => {
    const response = await fetch(`${url}${path}`, { method, ...(body && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    if (!response.ok) throw new Error(`sandbox ${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    return response.json() as Promise<any>;
  };
  return {
    url,
    dataDir,
    client: (store, clock, options = {}) =>
      createTaxServiceClient({
        baseUrl: url, credentials: storedCredentials(store, url, clock, { timeoutMs: 2_000 }),
        timeoutMs: 1_000, maxAttempts: 2, baseBackoffMs: 10, maxBackoffMs: 50, failureThreshold: 1_000, openMs: 100, ...options,
      }),
    fault: async (mode, settings = {}) => void (await admin('PUT', `/admin/faults/${mode}`, settings)),
    clear: async (mode) => void (await admin('DELETE', mode ? `/admin/faults/${mode}` : '/admin/faults')),
    setTerms: async (seller, terms) => void (await admin('PUT', `/admin/terms/${seller}`, terms)),
    async counters(seller) {
      const { items } = (await admin('GET', `/admin/uploads?seller=${seller}`)) as { items: UploadCounter[] };
      return new Map(items.map((i) => [i.number, i]));
    },
    async stop() {
      await sandbox?.close();
      sandbox = undefined;
    },
    async start() {
      sandbox ??= await startSandbox({ dataDir, port: boundPort });
    },
    async close() {
      await sandbox?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
