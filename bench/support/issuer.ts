// A light HTTP client for the issue benchmarks: keep-alive sockets, the body serialised once, one
// Idempotency-Key per request as a POS system would send, and only the status looked at.
//
// Requests take the socket idle longest ('fifo'), so paced load is spread over all the sockets as
// it is over a shop's many terminals. Node's default ('lifo') reuses the few sockets freed last:
// at half the peak rate a handful carried everything, and since the server's processes each own
// the connections they accepted, one process took most of the load while the other idled. Which
// one, and how lopsided, changed from run to run (open-loop p50 from 4.5 to 36 ms, same code).
import http from 'node:http';
import { threeLineInvoice } from '../../test/support/server-process.js';

export class Issuer {
  private readonly agent: http.Agent;
  private readonly body: Buffer;
  private sequence = 0;

  constructor(
    private readonly port: number,
    private readonly apiKey: string,
    private readonly runId: string,
    maxSockets: number,
    remarks = 'bench',
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });
    this.body = Buffer.from(JSON.stringify(threeLineInvoice(remarks)));
  }

  /** Resolves with the HTTP status, or 0 when there was no answer. */
  issue(): Promise<number> {
    const key = `${this.runId}-${++this.sequence}`;
    return new Promise((resolve) => {
      const request = http.request(
        {
          agent: this.agent, host: '127.0.0.1', port: this.port, method: 'POST', path: '/api/v1/invoices',
          headers: { 'content-type': 'application/json', 'content-length': this.body.length, authorization: `Bearer ${this.apiKey}`, 'idempotency-key': key },
        },
        (response) => {
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(0));
          response.resume();
        },
      );
      request.on('error', () => resolve(0));
      request.end(this.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
