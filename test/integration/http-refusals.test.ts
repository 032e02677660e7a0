// Requests refused before any route sees them — by Node's HTTP parser or by Fastify's router — are
// answered in the one error shape too, with a catalogue code, never a framework's own JSON.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { startApi, type Api } from '../support/http.js';

/** Sends raw bytes and gives back the status code and the JSON body of the answer. */
function rawRequest(port: number, bytes: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      resolve({ status, body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) });
    });
  });
}

describe('requests refused before any route', () => {
  let opened: OpenedStore;
  let api: Api;
  let port: number;

  beforeAll(async () => {
    opened = await storesUnderTest[0]!.open();
    api = await startApi(opened.store);
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    port = (api.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await api.close();
    await opened.cleanup();
  });

  const expectFault = (answer: { status: number; body: any }, status: number, code: number) => {
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatchObject({ code, message: expect.any(String), message_en: expect.any(String), remedy: expect.any(String), remedy_en: expect.any(String) });
  };

  it('answers a URL with a broken % escape with 1040', async () => {
    const answer = await rawRequest(port, 'GET /api/v1/invoices/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expectFault(answer, 400, 1040);
    expect(answer.body.error.message_en).toContain('% escape');
  });

  it('answers an overlong path segment with 1040', async () => {
    const answer = await rawRequest(port, `GET /api/v1/invoices/${'9'.repeat(300)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expectFault(answer, 400, 1040);
  });

  it('answers headers too large to read with 1041', async () => {
    const answer = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: ${'k'.repeat(100_000)}\r\n\r\n`);
    expectFault(answer, 431, 1041);
  });

  it('answers bytes that are not HTTP with 1040', async () => {
    const answer = await rawRequest(port, 'HELLO FAPIAO\r\n\r\n');
    expectFault(answer, 400, 1040);
  });
});
