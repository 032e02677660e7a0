// The floor under the issue benchmark: an HTTP server that does nothing an invoice needs. Like
// `fapiao serve` it forks one node:cluster process per core sharing the port; each reads a request's
// body, parses it as JSON and answers 201 with the bytes of a real issue answer (the file named on
// the command line). What the benchmark's client and this server cost per exchange is what any
// server in Node pays on this machine before its first line of invoicing.
//
//   node --import tsx bench/support/bare-http-server.ts PORT ANSWER_FILE
//
// The primary prints "ready" once every process listens.
import cluster from 'node:cluster';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const port = Number(process.argv[2]);
const answer = readFileSync(process.argv[3]!);

if (cluster.isPrimary) {
  const processes = availableParallelism();
  let listening = 0;
  for (let i = 0; i < processes; i++) {
    cluster.fork().once('listening', () => {
      if (++listening === processes) process.stdout.write('ready\n');
    });
  }
  cluster.on('exit', () => process.exit(1)); // a floor measured on fewer processes would be wrong
  process.once('SIGTERM', () => {
    cluster.removeAllListeners('exit');
    // worker.kill() would first wait for the worker to disconnect; the signal goes at once.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  http
    .createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        try {
          JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          response.writeHead(400).end(); // a body that is not JSON must not end a process of the floor
          return;
        }
        response.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length });
        response.end(answer);
      });
    })
    .listen(port, '127.0.0.1');
}
