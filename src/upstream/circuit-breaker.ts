// A circuit breaker in front of the tax service. After `failureThreshold` failures in a row it
// opens: calls fail at once (4003) for `openMs`, so a struggling service is not hammered and
// callers do not each wait for a timeout. Then one probe call is let through (half-open): success
// closes the circuit, failure opens it again. Its state is readable, for the status page and for
// the contingency decision.
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitSnapshot {
  state: CircuitState;
  /** When the circuit entered this state (epoch ms). */
  since: number;
  consecutiveFailures: number;
  lastError: { code: number; message: string; at: number } | null;
  /** While open: when the next probe is allowed (epoch ms). */
  retryAt: number | null;
  /** Half-open with its one probe out: its answer decides whether the service is back. */
  probeInFlight: boolean;
}

export interface CircuitBreakerOptions {
  failureThreshold: number;
  openMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private state: CircuitState = 'closed';
  private since: number;
  private failures = 0;
  private lastError: CircuitSnapshot['lastError'] = null;
  private probeInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
    this.since = this.now();
  }

  snapshot(): CircuitSnapshot {
    this.refresh();
    return {
      state: this.state,
      since: this.since,
      consecutiveFailures: this.failures,
      lastError: this.lastError,
      retryAt: this.state === 'open' ? this.since + this.options.openMs : null,
      probeInFlight: this.probeInFlight,
    };
  }

  /**
   * Asks to make a call. Returns false when the circuit is open, or half-open with its one probe
   * already out. A true answer must be followed by exactly one success() or failure().
   */
  tryAcquire(): boolean {
    this.refresh();
    if (this.state === 'closed') return true;
    if (this.state === 'open' || this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  success(): void {
    this.probeInFlight = false;
    this.failures = 0;
    if (this.state !== 'closed') this.enter('closed');
  }

  failure(error: { code: number; message: string }): void {
    this.probeInFlight = false;
    this.failures += 1;
    this.lastError = { ...error, at: this.now() };
    if (this.state === 'half_open' || (this.state === 'closed' && this.failures >= this.options.failureThreshold)) this.enter('open');
  }

  /** A call that ended without telling anything about the service's health (e.g. refused input). */
  neutral(): void {
    if (this.probeInFlight) {
      this.probeInFlight = false;
      this.enter('closed');
      this.failures = 0;
    }
  }

  private refresh(): void {
    if (this.state === 'open' && this.now() >= this.since + this.options.openMs) this.enter('half_open');
  }

  private enter(state: CircuitState): void {
    this.state = state;
    this.since = this.now();
  }
}
