// With a synchronous standby, a commit returns only once the standby holds it, and until then no
// other session sees it. While the standby is away an issue batch waits in its commit, unanswered
// and invisible, holding its merchant's lock: the merchant's next batches wait behind it and commit
// nothing, so however many requests arrive, none becomes an invoice that its client was told failed.
// Once the standby is back every one of them is answered, and the standby holds them.
// (Releasing the merchant's lock at an asynchronous commit and waiting for the standby afterwards,
// tried on 2026-12-05, made every request during the outage a committed invoice answered 5001.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.js';
import type { Store } from '../../src/app/ports.js';
import { postgresInstalled, startPrimaryWithSyncStandby, type PgPair } from '../support/pg-cluster.js';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { sleep, tempDataDir } from '../support/server-process.js';

/** How long no answer may come while the standby is away (well inside the 10 s statement timeout). */
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

  it('keeps every answer back while the standby is stopped, commits nothing visible meanwhile, and answers all once it is back', async () => {
    const first = await api!.issue(api!.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'with-standby' });
    expect(first.statusCode).toBe(201);
    const visibleOnPrimary = async () => (await pair!.primary.query<{ n: number }>('select count(*)::int as n from invoice_records'))[0]!.n;

    await pair!.standby.stop('immediate');
    let answered = 0;
    const issue = (key: string) => api!.issue(api!.a.keys.clerk, sampleInvoice(), { 'idempotency-key': key }).finally(() => (answered += 1));
    const waiting = [issue('standby-away-1')];
    await sleep(300); // its batch is in its commit now: the next requests form batches of their own
    waiting.push(issue('standby-away-2'), issue('standby-away-3'));
    await sleep(UNANSWERED_MS);
    expect(answered).toBe(0);
    expect(await visibleOnPrimary()).toBe(1);

    await pair!.standby.start();
    const answers = await Promise.all(waiting);
    expect(answers.map((a) => a.statusCode)).toEqual([201, 201, 201]);
    const numbers = answers.map((a) => json(a).number as string);
    const onStandby = await pair!.standby.query<{ number: string }>('select number from invoice_records where number = any($1) order by number', [numbers]);
    expect(onStandby.map((r) => r.number)).toEqual([...numbers].sort());
    expect(await visibleOnPrimary()).toBe(4);
  });
});
