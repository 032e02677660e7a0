// A worker that cannot start (here: the port is taken) fails the same way every time. Instead of
// starting another every half second for ever, the primary stops and exits non-zero saying why, so
// whoever runs it (systemd, a container runtime, a person) sees the failure, as with one process.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, sleep, spawnServer, tempDataDir, type ServerProcess } from '../support/server-process.js';

describe('a server whose HTTP processes cannot start', () => {
  const dir = tempDataDir('fapiao-start-failure-');
  let server: ServerProcess | undefined;
  let taken: Server | undefined;
  afterEach(async () => {
    await server?.kill('SIGKILL');
    await new Promise((done) => (taken ? taken.close(done) : done(undefined)));
    dir.remove();
  });

  it('exits non-zero with the reason instead of starting them again for ever', async () => {
    const port = await freePort();
    taken = createServer();
    await new Promise<void>((listening) => taken!.listen(port, '127.0.0.1', listening));

    server = spawnServer({ dataDir: dir.dataDir, port, env: { FAPIAO_WORKERS: '2' } });
    const how = await Promise.race([server.exited, sleep(30_000).then(() => 'still running after 30 s')]);

    expect(how, server.output()).toBe(1);
    expect(server.output()).toMatch(/EADDRINUSE/);
    expect(server.output()).toContain('stopping: the http process failed to start 2 times in a row (last: exit code 1)');
  }, 60_000);
});
