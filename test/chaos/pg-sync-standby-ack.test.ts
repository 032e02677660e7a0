// On PostgreSQL a write transaction lets go of its locks at the commit before its WAL is flushed
// (src/store/pg-durable-commit.ts), and nobody is answered until the WAL is on disk and on the
// synchronous standby. With the standby stopped, an issue is committed on the primary, where the
// next batches can already build on it, but it is not acknowledged; once the standby is back it is,
// and the standby holds it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.js';
import type { Store } from '../../src/app/ports.js';
import { postgresInstalled, startPrimaryWithSyncStandby, type PgPair } from '../support/pg-cluster.js';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { sleep, tempDataDir } from '../support/server-process.js';

/** How long an answer must not come while the standby is away (well inside the 10 s statement timeout). */
const UNANSWERED_MS = 2_000;

describe.skipIf(!postgresInstalled)('PostgreSQL with a synchronous standby: an issue is answered only once the standby holds it', () => {
  const dir = tempDataDir('fapiao-pg-sync-ack-');
  let pair: PgPair | undefined;
  let store: Store | undefined;
  let api: Api | undefined;

  beforeAll(async () => {
    pair = await startPrimaryWithSyncStandby();
    store = await openStore({ dataDir: dir.dataDir, databaseUrl: pair.url });
    api = await startApi(store);
  });
  afterAll(async () => {
    await api?.close();
    await store?.close();
    await pair?.remove();
    dir.remove();
  });

  it('keeps the answer back while the standby is stopped, and gives it once the standby has the invoice', async () => {
    const first = await api!.issue(api!.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'with-standby' });
    expect(first.statusCode).toBe(201);

    await pair!.standby.stop('immediate');
    let answered = false;
    const pending = api!.issue(api!.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'standby-away' }).finally(() => (answered = true));
    await sleep(UNANSWERED_MS);
    expect(answered).toBe(false);
    // Committed on the primary meanwhile, its lock let go: visible there, not yet acknowledged.
    const onPrimary = await pair!.primary.query<{ key: string }>("select key from idempotency_keys where key = 'standby-away'");
    expect(onPrimary).toEqual([{ key: 'standby-away' }]);

    await pair!.standby.start();
    const second = await pending;
    expect(second.statusCode, second.body).toBe(201);
    const number = json(second).number as string;
    const onStandby = await pair!.standby.query<{ number: string }>('select number from invoice_records where number = $1', [number]);
    expect(onStandby).toEqual([{ number }]);
  });
});
