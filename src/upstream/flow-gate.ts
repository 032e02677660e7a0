// The tax service's flow control (docs/tax-service-protocol.md, Flow control): an upload's answer
// may name the least time before the seller's next submission (VERI*FACTU's TiempoEsperaEnvio), and
// a submission that comes sooner is refused with 429. The client keeps each seller's wait here, so
// that a wait any of the process's upload lanes was given holds for all of them: a submission that
// would come too early is refused before it is sent, not by the tax service. While a seller's
// submissions are answered with waits, only one at a time goes out: a second one sent meanwhile
// would arrive before the wait that the first one's answer is about to set.

/**
 * A submission held back because another one is out waits at least this long: the answer it waits
 * for may take that long, and a shorter wait would only have its jobs claimed and given back again.
 */
const IN_FLIGHT_HOLD_MS = 1_000;

interface SellerFlow {
  /** Epoch ms before which no submission may go. */
  notBefore: number;
  /** The last wait the tax service asked for (0: none, so submissions may overlap). */
  waitMs: number;
  inFlight: number;
}

export class FlowGate {
  private readonly sellers = new Map<string, SellerFlow>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * How long `seller`'s next submission must wait (ms). 0: it may go now, and counts as in flight
   * until `leave`.
   */
  enter(seller: string): number {
    const flow = this.sellers.get(seller) ?? { notBefore: 0, waitMs: 0, inFlight: 0 };
    const early = flow.notBefore - this.now();
    if (early > 0) return early;
    if (flow.waitMs > 0 && flow.inFlight > 0) return Math.max(flow.waitMs, IN_FLIGHT_HOLD_MS);
    flow.inFlight += 1;
    this.sellers.set(seller, flow);
    return 0;
  }

  /**
   * A submission `enter` let go has ended: `waitSeconds` is the wait its answer asked for (or a
   * refusal's Retry-After), undefined when no answer came.
   */
  leave(seller: string, waitSeconds: number | undefined): void {
    const flow = this.sellers.get(seller);
    if (!flow) return;
    flow.inFlight -= 1;
    if (waitSeconds !== undefined) {
      flow.waitMs = Math.max(0, waitSeconds) * 1000;
      flow.notBefore = Math.max(flow.notBefore, this.now() + flow.waitMs);
    }
    if (flow.inFlight === 0 && flow.waitMs === 0 && flow.notBefore <= this.now()) this.sellers.delete(seller);
  }
}
