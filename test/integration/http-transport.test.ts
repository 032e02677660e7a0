// The tax-service client's transport against real sockets: what it hands back from an answer,
// that it keeps one connection for consecutive calls, and how each way of failing reaches the
// client (a timeout, a refused connection, an answer cut off halfway: the last may have been
// processed, so the client must resolve it by a status query).
import http from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpTransport } from '../../src/upstream/http-transport.js';

const servers: Array<http.Server | ReturnType<typeof createServer>> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((done) => server.close(() => done(undefined)));
});

async function listen<S extends http.Server | ReturnType<typeof createServer>>(server: S, host = '127.0.0.1'): Promise<string> {
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, host, done));
  return `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}/base`;
}

const failureOf = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a failure'); }, (error: unknown) => error as { name?: string; code?: string });

describe('tax-service transport', () => {
  it('sends the body and headers, hands back status, headers and UTF-8 text, and keeps one connection', async () => {
    let connections = 0;
    const seen: Array<{ method?: string; url?: string; type?: string; length?: string; body: string }> = [];
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        seen.push({ method: request.method, url: request.url, type: request.headers['content-type'], length: request.headers['content-length'], body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(207, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '3' });
        response.end(JSON.stringify({ echo: '已收到 received' }));
      });
    });
    server.on('connection', () => connections++);
    const transport = httpTransport(await listen(server));
    const body = Buffer.from(JSON.stringify({ buyer: '福州测试商贸有限公司' }));

    const first = await transport.request({ method: 'POST', path: '/base/v1/uploads?x=1', headers: { 'content-type': 'application/json' }, body, timeoutMs: 2_000 });
    const second = await transport.request({ method: 'GET', path: '/base/v1/terms', headers: {}, timeoutMs: 2_000 });

    expect(first.status).toBe(207);
    expect(first.header('Retry-After')).toBe('3');
    expect(first.header('x-missing')).toBeUndefined();
    expect(JSON.parse(first.text)).toEqual({ echo: '已收到 received' });
    expect(second.status).toBe(207);
    expect(seen[0]).toEqual({ method: 'POST', url: '/base/v1/uploads?x=1', type: 'application/json', length: String(body.length), body: body.toString('utf8') });
    expect(seen[1]).toMatchObject({ method: 'GET', url: '/base/v1/terms', body: '' });
    expect(connections).toBe(1);
  });

  it('drops an idle connection before the server says it will, so no request is written into one it is closing', async () => {
    let connections = 0;
    const server = http.createServer((_request, response) => response.end('{}'));
    server.keepAliveTimeout = 2_000; // announced as Keep-Alive: timeout=2
    server.on('connection', () => connections++);
    const transport = httpTransport(await listen(server));
    const call = () => transport.request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 2_000 });
    await call();
    await new Promise((done) => setTimeout(done, 1_500)); // past the hint's safety margin, before the server's close
    await call();
    expect(connections).toBe(2);
  });

  it('reaches a tax service at an IPv6 address (the URL brackets it, the socket must not)', async () => {
    const url = await listen(http.createServer((_request, response) => response.end('{"ok":true}')), '::1');
    expect(url).toMatch(/^http:\/\/\[::1\]:\d+\/base$/);
    const answer = await httpTransport(url).request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 2_000 });
    expect(JSON.parse(answer.text)).toEqual({ ok: true });
  });

  it('drops a byte-order mark in front of an answer, as JSON needs', async () => {
    const server = http.createServer((_request, response) => response.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"答复":"ok"}')])));
    const answer = await httpTransport(await listen(server)).request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 2_000 });
    expect(JSON.parse(answer.text)).toEqual({ 答复: 'ok' });
  });

  it('gives up after its timeout when no answer comes, and closes that connection', async () => {
    let closed = false;
    const server = createServer((socket: Socket) => {
      socket.on('data', () => undefined); // reads the request, never answers
      socket.on('close', () => (closed = true));
    });
    const transport = httpTransport(await listen(server));
    const started = Date.now();
    const failure = await failureOf(transport.request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 300 }));
    expect(failure.name).toBe('TimeoutError');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(2_000);
    await new Promise((done) => setTimeout(done, 100));
    expect(closed).toBe(true);
  });

  it('times out an answer that starts but never finishes', async () => {
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"outcomes":'); // and nothing more
    });
    const transport = httpTransport(await listen(server));
    const failure = await failureOf(transport.request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 300 }));
    expect(failure.name).toBe('TimeoutError');
  });

  it('reports an answer cut off halfway as a reset connection (the request may have been processed)', async () => {
    const server = createServer((socket: Socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"outcomes":[');
        setTimeout(() => socket.destroy(), 20);
      });
    });
    const transport = httpTransport(await listen(server));
    const failure = await failureOf(transport.request({ method: 'POST', path: '/base/x', headers: {}, body: Buffer.from('{}'), timeoutMs: 2_000 }));
    expect(failure.code).toBe('ECONNRESET');
  });

  it('reports a closed port as a refused connection (the request never left)', async () => {
    const url = await listen(createServer());
    await new Promise((done) => servers.pop()!.close(() => done(undefined)));
    const failure = await failureOf(httpTransport(url).request({ method: 'GET', path: '/base/x', headers: {}, timeoutMs: 2_000 }));
    expect(failure.code).toBe('ECONNREFUSED');
  });
});
