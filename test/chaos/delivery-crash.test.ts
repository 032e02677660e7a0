// R11 under a crash: the real server is SIGKILLed while a webhook request is in flight (the
// receiver has it and has not answered). After a restart the delivery must arrive, under the same
// delivery id, processed once by a receiver that deduplicates, and the log must show the attempt
// the crash cut short — never a silent loss or a silent repeat.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../src/documents/webhooks.js';
import { createMerchantAndKey, freePort, runCliJson, sleep, startServer, tempDataDir, threeLineInvoice, type ServerProcess } from '../support/server-process.js';
import { until } from '../support/until.js';

const LEASE_MS = 3_000;

describe('crash: SIGKILL during a webhook delivery', () => {
  const dir = tempDataDir('fapiao-delivery-crash-');
  const requests: Array<{ id: string; signature: string; body: string }> = [];
  const processed = new Set<string>();
  let secret = '';
  let hang = true;
  const receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ id: String(request.headers['fapiao-delivery-id']), signature: String(request.headers['fapiao-signature']), body });
      if (hang) return; // the sender dies while waiting for this answer
      if (!verifyWebhookSignature(secret, String(request.headers['fapiao-signature']), body, new Date())) return void response.writeHead(401).end();
      processed.add(String(request.headers['fapiao-delivery-id']));
      response.writeHead(204).end();
    });
  });
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.kill();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
    dir.remove();
  });

  it('delivers after the restart under the same id, once, and logs the interrupted attempt', async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const { merchantId, apiKey } = await createMerchantAndKey(dir.dataDir);
    ({ secret } = await runCliJson<{ secret: string }>(dir.dataDir, ['webhook', 'add', '--merchant', merchantId, '--url', hook]));
    const port = await freePort();
    const env = { FAPIAO_WORKERS: '1', FAPIAO_DELIVERY_LEASE_MS: String(LEASE_MS) };
    server = await startServer({ dataDir: dir.dataDir, port, env });

    const issued = await fetch(`${server.baseUrl}/api/v1/invoices`, {
      method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(threeLineInvoice('crash')),
    });
    expect(issued.status).toBe(201);
    const { number } = (await issued.json()) as { number: string };
    for (let i = 0; i < 200 && requests.length === 0; i++) await sleep(50);
    expect(requests, 'the webhook was never sent').toHaveLength(1);
    await server.kill('SIGKILL');

    hang = false;
    server = await startServer({ dataDir: dir.dataDir, port, env });
    for (let i = 0; i < 300 && processed.size === 0; i++) await sleep(50);
    expect(processed.size, server.output()).toBe(1);

    expect(new Set(requests.map((r) => r.id)).size).toBe(1); // the same delivery id both times
    expect(requests[1]!.body).toBe(requests[0]!.body);
    const event = JSON.parse(requests[1]!.body) as { type: string; data: { invoice: { number: string } } };
    expect(event).toMatchObject({ type: 'invoice.issued', data: { invoice: { number } } });

    // The receiver has answered; the worker writes the outcome down just after.
    type Detail = { state: string; attempts: number; attempts_log: Array<{ outcome: string; status_code: number | null; error: string | null }> };
    const detail = await until('the delivery recorded as delivered', async () => {
      const log = await fetch(`${server!.baseUrl}/api/v1/deliveries/${requests[0]!.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
      const answer = (await log.json()) as Detail;
      return answer.state === 'pending' ? undefined : answer;
    }, 10_000, 50);
    expect(detail.state).toBe('delivered');
    expect(detail.attempts_log.map((a) => a.outcome)).toEqual(['failed', 'delivered']);
    expect(detail.attempts_log[0]!.error).toMatch(/^interrupted/);
    expect(detail.attempts_log[1]!.status_code).toBe(204);
    await sleep(LEASE_MS / 2); // nothing more arrives afterwards
    expect(requests).toHaveLength(2);
  }, 60_000);
});
