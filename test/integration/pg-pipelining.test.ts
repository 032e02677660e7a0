// On PostgreSQL the statements an instance sends together go out on the wire together: the server
// gets the second before the first is answered, so the pair costs one round trip, not two. Under the
// merchant's lock that is a round trip (across a network, at least the network's delay) the other
// instances do not wait for. An issue batch's Idempotency-Keys are read before it asks for the lock,
// so nothing it sends depends on an answer until the context's. What the wire carries is read
// through a recording proxy.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { postgres, type OpenedStore } from '../support/stores.js';

const url = process.env.TEST_DATABASE_URL;

type Direction = 'to server' | 'to client';
/** `order`: when it passed, counted across all connections. */
interface Chunk { direction: Direction; data: Buffer; order: number }

/** A TCP proxy in front of PostgreSQL that keeps, per connection, what passed in each direction in order. */
async function recordingProxy(target: URL): Promise<{ url: string; connections: Chunk[][]; close: () => Promise<void> }> {
  const connections: Chunk[][] = [];
  let order = 0;
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const chunks: Chunk[] = [];
    connections.push(chunks);
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.push(client, upstream);
    client.on('data', (data) => { chunks.push({ direction: 'to server', data, order: order++ }); upstream.write(data); });
    upstream.on('data', (data) => { chunks.push({ direction: 'to client', data, order: order++ }); client.write(data); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const proxied = new URL(target);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return {
    url: proxied.toString(),
    connections,
    close: () => new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    }),
  };
}

/** What went out before each answer: consecutive chunks of one direction joined, from the chunk holding `from` on. */
function exchanges(chunks: Chunk[], from: string): string[] {
  const start = chunks.findIndex((c) => c.direction === 'to server' && c.data.includes(from));
  const sent: string[] = [];
  let previous: Direction | undefined;
  for (const chunk of chunks.slice(start)) {
    if (chunk.direction === 'to server') {
      if (previous === 'to server') sent[sent.length - 1] += chunk.data.toString('latin1');
      else sent.push(chunk.data.toString('latin1'));
    }
    previous = chunk.direction;
  }
  return sent;
}

describe.skipIf(!url)('statements sent together reach PostgreSQL together', () => {
  let proxy: Awaited<ReturnType<typeof recordingProxy>> | undefined;
  let opened: OpenedStore | undefined;
  let api: Api | undefined;
  afterEach(async () => {
    await api?.close();
    await opened?.cleanup();
    await proxy?.close();
  });

  it('an issue batch is two exchanges: the begin with the lock and the context, the write with the commit', async () => {
    proxy = await recordingProxy(new URL(url!));
    opened = await postgres(proxy.url).open();
    api = await startApi(opened.store);
    const first = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'till-1-0001' });
    expect(first.statusCode, first.body).toBe(201);
    proxy.connections.forEach((c) => (c.length = 0)); // what the first issue prepared on its connections is not counted

    const response = await api.issue(api.a.keys.clerk, sampleInvoice(), { 'idempotency-key': 'till-1-0002' });
    expect(response.statusCode, response.body).toBe(201);
    const sentChunks = proxy.connections.flat().filter((chunk) => chunk.direction === 'to server').sort((a, b) => a.order - b.order);
    const batch = proxy.connections.find((c) => c.some((chunk) => chunk.direction === 'to server' && chunk.data.includes('begin')));
    const sent = exchanges(batch!, 'begin');
    const begin = sentChunks.find((chunk) => chunk.data.includes('begin'))!;

    expect(sent).toHaveLength(2);
    expect(sent[0]).toContain('begin');
    expect(sent[0]).toContain(api.a.id); // the lock's and the context's parameter, in the same flight as the begin
    expect(sent[0]).not.toContain('till-1-0002'); // the key was read before the lock, on its own
    expect(sent[1]).toContain(json(response).digest); // the invoice's row…
    expect(sent[1]).toContain('commit'); // …and the commit, before the write was answered
    expect(sentChunks.find((chunk) => chunk.data.includes('till-1-0002'))!.order).toBeLessThan(begin.order);
  });
});
