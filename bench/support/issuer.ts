// A light HTTP client for the issue benchmarks: keep-alive sockets, the body serialised once, one
// Idempotency-Key per request as a POS system would send, and only the status looked at.
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
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
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
