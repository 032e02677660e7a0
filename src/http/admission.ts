// R5: "generate" never hangs. Past a bound of requests in flight the server answers at once with
// 7001 and Retry-After instead of letting a queue grow until clients time out.
import { Fault, faults } from '../domain/faults.js';

export class Admission {
  private inFlight = 0;

  constructor(private readonly maxInFlight: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.maxInFlight) throw new Fault(faults.SERVER_BUSY, { seconds: '1' }, [], 1);
    this.inFlight += 1;
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
    }
  }
}
