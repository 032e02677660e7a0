// On PostgreSQL the statements an instance sends together go out on the wire together: the server
// gets the second before the first is answered, so the pair costs one round trip, not two. Under the
// merchant's lock that is a round trip (across a network, at least the network's delay) the other
// instances do not wait for. What the wire carries is read through a recording proxy.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { postgres, type OpenedStore } from '../support/stores.js';

const url = process.env.TEST_DATABASE_URL;

type Direction = 'to server' | 'to client';
interface Chunk { direction: Direction; data: Buffer }

/** A TCP proxy in front of PostgreSQL that keeps, per connection, what passed in each direction in order. */
async function recordingProxy(target: URL): Promise<{ url: string; connections: Chunk[][]; close: () => Promise<void> }> {
  const connections: Chunk[][] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const chunks: Chunk[] = [];
    connections.push(chunks);
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.push(client, upstream);
    client.on('data', (data) => { chunks.push({ direction: 'to server', data }); upstream.write(data); });
    upstream.on('data', (data) => { chunks.push({ direction: 'to client', data }); client.write(data); });
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

  it('an issue batch is three exchanges: the begin with the lock, the context, the write with the commit', async () => {
    proxy = await recordingProxy(new URL(url!));
    opened = await postgres(proxy.url).open();
    api = await startApi(opened.store);
    const first = await api.issue(api.a.keys.clerk, sampleInvoice());
    expect(first.statusCode, first.body).toBe(201);
    proxy.connections.forEach((c) => (c.length = 0)); // what the first issue prepared on its connection is not counted

    const response = await api.issue(api.a.keys.clerk, sampleInvoice());
    expect(response.statusCode, response.body).toBe(201);
    const batch = proxy.connections.find((c) => c.some((chunk) => chunk.direction === 'to server' && chunk.data.includes('begin')));
    const sent = exchanges(batch!, 'begin');

    expect(sent).toHaveLength(3);
    expect(sent[0]).toContain('begin');
    expect(sent[0]).toContain(api.a.id); // the lock's parameter, in the same flight as the begin
    expect(sent[2]).toContain(json(response).digest); // the invoice's row…
    expect(sent[2]).toContain('commit'); // …and the commit, before the write was answered
  });
});
