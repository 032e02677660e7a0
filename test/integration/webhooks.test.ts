// Signed webhooks (R11) against a real HTTP receiver on a real port. The receiver does what the
// docs tell merchants to do: check the signature over the raw body, and process each
// Fapiao-Delivery-Id once. It fails its first three requests; the invoice must still reach the
// application exactly once, every attempt must be logged, and a manual redelivery must arrive
// under the same id.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRunner, type OutboxRunner } from '../../src/app/outbox-runner.js';
import { fanOut, webhookHandler, WEBHOOK_TOPIC } from '../../src/app/deliveries.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import { verifyWebhookSignature } from '../../src/documents/webhooks.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api, type ErrorBody, type MovableClock } from '../support/http.js';
import { until } from '../support/until.js';

/**
 * Real time: backoff pauses must really pass, and the receiver checks the signature's timestamp
 * against its own clock, as a real one would.
 */
function runningClock(): MovableClock {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    set: (at) => void (offset = new Date(at).getTime() - Date.now()),
    advance: (ms) => void (offset += ms),
  };
}

interface Received {
  deliveryId: string;
  event: string;
  signature: string;
  body: string;
  at: Date;
}

/** A merchant's receiving system: fails the first `failures` requests, dedupes by delivery id. */
async function startReceiver(failures: number) {
  const received: Received[] = [];
  const processed = new Map<string, unknown>();
  let secret = '';
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const entry = { deliveryId: String(request.headers['fapiao-delivery-id']), event: String(request.headers['fapiao-event']), signature: String(request.headers['fapiao-signature']), body: raw, at: new Date() };
      received.push(entry);
      if (received.length <= failures) return void response.writeHead(500).end('database is down');
      if (!verifyWebhookSignature(secret, entry.signature, raw, new Date())) return void response.writeHead(401).end('bad signature');
      if (!processed.has(entry.deliveryId)) processed.set(entry.deliveryId, JSON.parse(raw));
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/fapiao/hook`,
    received,
    processed,
    setSecret: (s: string) => void (secret = s),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const kind of storesUnderTest) {
  describe(`webhooks on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let runner: OutboxRunner & { start(): void };
    let secret: string;
    let endpointId: string;
    const post = (key: string, url: string, payload?: unknown, method: 'POST' | 'PATCH' | 'DELETE' = 'POST') =>
      api.inject({ method, url, headers: { authorization: `Bearer ${key}`, ...(payload !== undefined && { 'content-type': 'application/json' }) }, ...(payload !== undefined && { payload: JSON.stringify(payload) }) });

    beforeAll(async () => {
      opened = await kind.open();
      api = await startApi(opened.store, { clock: runningClock() });
      receiver = await startReceiver(3);
      const created = await post(api.a.keys.owner, '/api/v1/webhooks', { url: receiver.url, description: 'ERP' });
      expect(created.statusCode).toBe(201);
      ({ secret, id: endpointId } = body(created));
      receiver.setSecret(secret);
      const deps = { renderPdf: async () => Buffer.alloc(0), retry: { baseDelayMs: 40, maxDelayMs: 200, giveUpAfterMs: 60_000 } };
      runner = createOutboxRunner(api.ports, webhookHandler(api.ports, deps), { idleMs: 20, backoffMs: 20, leaseMs: 1_000 });
      runner.start();
    });
    afterAll(async () => {
      await runner.stop();
      await receiver.close();
      await api.close();
      await opened.cleanup();
    });

    it('delivers an issued invoice once to a receiver that fails three times, with a valid signature and one delivery id', async () => {
      const issued = body((await api.issue(api.a.keys.clerk, api.sampleInvoice())));
      expect(await fanOut(api.ports)).toBe(1);
      expect(await fanOut(api.ports)).toBe(0); // the cursor moved: a second pass creates nothing

      const delivery = await until('delivery', async () => {
        const list = body(await api.get(api.a.keys.owner, '/api/v1/deliveries', { subject: issued.number }));
        return list.items[0]?.state === 'delivered' ? list.items[0] : undefined;
      });
      expect(receiver.received).toHaveLength(4);
      expect(new Set(receiver.received.map((r) => r.deliveryId))).toEqual(new Set([delivery.id]));
      expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1); // the same bytes every time
      for (const r of receiver.received) expect(verifyWebhookSignature(secret, r.signature, r.body, r.at)).toBe(true);
      // Retried with growing pauses, not in a tight loop.
      const gaps = receiver.received.slice(1).map((r, i) => r.at.getTime() - receiver.received[i]!.at.getTime());
      expect(gaps[0]).toBeGreaterThanOrEqual(25);
      expect(gaps[2]!).toBeGreaterThan(gaps[0]!);

      expect(receiver.processed.size).toBe(1);
      const event = receiver.processed.get(delivery.id) as any;
      expect(event).toMatchObject({ id: delivery.id, type: 'invoice.issued', data: { invoice: { number: issued.number, total_with_tax: '1564.24' } } });

      const detail = body(await api.get(api.a.keys.auditor, `/api/v1/deliveries/${delivery.id}`));
      expect(detail.attempts).toBe(4);
      expect(detail.attempts_log.map((a: any) => [a.outcome, a.status_code])).toEqual([['failed', 500], ['failed', 500], ['failed', 500], ['delivered', 200]]);
      expect(detail.attempts_log[0].error).toContain('HTTP 500');
      for (const a of detail.attempts_log) expect(a.duration_ms).toBeGreaterThanOrEqual(0);

      // A tampered body, a wrong secret or an old timestamp do not verify.
      const r = receiver.received[3]!;
      expect(verifyWebhookSignature(secret, r.signature, r.body.replace('1564.24', '1.00'), r.at)).toBe(false);
      expect(verifyWebhookSignature(`${secret}x`, r.signature, r.body, r.at)).toBe(false);
      expect(verifyWebhookSignature(secret, r.signature, r.body, new Date(r.at.getTime() + 301_000))).toBe(false);

      // Manual redelivery: the same id again, which the receiver recognises.
      const again = await post(api.a.keys.clerk, `/api/v1/deliveries/${delivery.id}/redeliver`);
      expect(again.statusCode).toBe(202);
      expect(body(again)).toMatchObject({ id: delivery.id, state: 'pending', redeliveries: 1 });
      await until('redelivery', async () => (receiver.received.length === 5 ? true : undefined));
      expect(receiver.received[4]!.deliveryId).toBe(delivery.id);
      expect(receiver.received[4]!.body).toBe(receiver.received[0]!.body);
      expect(receiver.processed.size).toBe(1);
      const after = await until('redelivered', async () => {
        const d = body(await api.get(api.a.keys.owner, `/api/v1/deliveries/${delivery.id}`));
        return d.state === 'delivered' ? d : undefined;
      });
      expect(after.attempts_log).toHaveLength(5);
    });

    it('logs an attempt cut short by a crash and sends it again under the same id', async () => {
      const sent = receiver.received.length;
      await runner.stop();
      const test = body(await post(api.a.keys.owner, `/api/v1/webhooks/${endpointId}/test`));
      // Redelivering what is still being attempted is refused.
      const early = await post(api.a.keys.owner, `/api/v1/deliveries/${test.id}/redeliver`);
      expect(early.statusCode).toBe(409);
      expect(body<ErrorBody>(early).error.code).toBe(3031);
      // A process claims the delivery and dies before it can attempt or record anything.
      const now = api.clock.now();
      const claimed = await api.store.write((tx) => tx.outbox.claim({ topic: WEBHOOK_TOPIC, owner: 'dead-process', now: shanghaiTimestamp(now), leaseUntil: shanghaiTimestamp(new Date(now.getTime() + 300)), limit: 10 }));
      expect(claimed.map((j) => j.subject)).toContain(test.id);
      runner = createOutboxRunner(api.ports, webhookHandler(api.ports, { renderPdf: async () => Buffer.alloc(0) }), { idleMs: 20, backoffMs: 20, leaseMs: 1_000 });
      runner.start();
      const detail = await until('taken over', async () => {
        const d = body(await api.get(api.a.keys.owner, `/api/v1/deliveries/${test.id}`));
        return d.state === 'delivered' ? d : undefined;
      });
      expect(detail.attempts_log.map((a: any) => a.outcome)).toEqual(['failed', 'delivered']);
      expect(detail.attempts_log[0].error).toMatch(/^interrupted/);
      expect(receiver.received.slice(sent).filter((r) => r.deliveryId === test.id)).toHaveLength(1);
      expect(receiver.received.at(-1)!.event).toBe('webhook.test');
    });

    it('skips a merchant whose fan-out fails, so the others still get their deliveries', async () => {
      await runner.stop();
      const other = await startReceiver(0);
      const created = body(await post(api.b.keys.owner, '/api/v1/webhooks', { url: other.url }));
      try {
        other.setSecret(created.secret);
        const a = body(await api.issue(api.a.keys.clerk, api.sampleInvoice()));
        const b = body(await api.issue(api.b.keys.clerk, api.sampleInvoice()));
        // Something behind the application's back makes A's batch fail: a delivery row that collides.
        await opened.exec(`insert into deliveries (id, merchant_id, channel, endpoint_id, recipient, event, subject, payload, state, attempts, window_started_at, next_attempt_at, created_at, redeliveries)
          values ('dlv_in_the_way', '${api.a.id}', 'webhook', null, '${receiver.url}', 'invoice.issued', '${a.number}', '{}', 'failed', 0, 'x', 'x', 'x', 0)`);
        const failed: string[] = [];
        expect(await fanOut(api.ports, (merchantId) => failed.push(merchantId))).toBe(1);
        expect(failed).toEqual([api.a.id]);
        await expect(fanOut(api.ports)).rejects.toThrow();
        expect(body(await api.get(api.b.keys.owner, '/api/v1/deliveries', { subject: b.number })).items).toHaveLength(1);
        expect(body(await api.get(api.a.keys.owner, '/api/v1/deliveries', { subject: a.number })).items.map((d: any) => d.id)).toEqual(['dlv_in_the_way']);
      } finally {
        await post(api.b.keys.owner, `/api/v1/webhooks/${created.id}`, undefined, 'DELETE');
        await other.close();
        runner = createOutboxRunner(api.ports, webhookHandler(api.ports, { renderPdf: async () => Buffer.alloc(0) }), { idleMs: 20, backoffMs: 20, leaseMs: 1_000 });
        runner.start();
      }
    });

    it('checks endpoints and keeps them to their merchant', async () => {
      const bad = await post(api.a.keys.owner, '/api/v1/webhooks', { url: 'ftp://erp.example.cn/hook' });
      expect(bad.statusCode).toBe(422);
      expect(body<ErrorBody>(bad).error.code).toBe(1030);
      const withPassword = await post(api.a.keys.owner, '/api/v1/webhooks', { url: 'https://user:pw@erp.example.cn/hook' });
      expect(body<ErrorBody>(withPassword).error.code).toBe(1030);
      const twice = await post(api.a.keys.owner, '/api/v1/webhooks', { url: receiver.url });
      expect(body<ErrorBody>(twice).error.code).toBe(1030);
      const other = body(await post(api.a.keys.owner, '/api/v1/webhooks', { url: 'https://erp.example.cn/other' }));
      const onto = await post(api.a.keys.owner, `/api/v1/webhooks/${other.id}`, { url: receiver.url }, 'PATCH');
      expect(body<ErrorBody>(onto).error.code).toBe(1030);
      expect((await post(api.a.keys.owner, `/api/v1/webhooks/${other.id}`, undefined, 'DELETE')).statusCode).toBe(204);
      const clerk = await post(api.a.keys.clerk, '/api/v1/webhooks', { url: 'https://erp.example.cn/hook' });
      expect(clerk.statusCode).toBe(403);
      const list = body(await api.get(api.a.keys.owner, '/api/v1/webhooks'));
      expect(list.items).toHaveLength(1);
      expect(JSON.stringify(list)).not.toContain(secret);
      expect(list.items[0].secret_hint).toBe(secret.slice(-4));
      expect((await api.get(api.b.keys.owner, `/api/v1/deliveries/${receiver.received[0]!.deliveryId}`)).statusCode).toBe(404);
      expect(body(await api.get(api.b.keys.owner, '/api/v1/webhooks')).items).toHaveLength(0);
      expect((await post(api.b.keys.owner, `/api/v1/webhooks/${endpointId}`, { enabled: false }, 'PATCH')).statusCode).toBe(404);
      const disabled = await post(api.a.keys.owner, `/api/v1/webhooks/${endpointId}`, { enabled: false }, 'PATCH');
      expect(body(disabled).enabled).toBe(false);
      // A delivery to a disabled endpoint ends at once, and people are told.
      const test = body(await post(api.a.keys.owner, `/api/v1/webhooks/${endpointId}/test`));
      const ended = await until('the delivery to end', async () => {
        const d = body(await api.get(api.a.keys.owner, `/api/v1/deliveries/${test.id}`));
        return d.state === 'failed' ? d : undefined;
      });
      expect(ended.last_error).toBe('the webhook endpoint is disabled');
      const alerts = body(await api.get(api.a.keys.owner, '/api/v1/alerts', { kind: 'delivery.failed' })).items;
      expect(alerts.map((a: any) => a.subject)).toContain(test.id);
    });
  });
}
