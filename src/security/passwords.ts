// Password hashing with argon2id. Each hash costs tens of milliseconds of CPU and ~19 MiB, so
// a burst of logins could starve invoice issuing: a small gate bounds how many run at once and
// how many may wait. Past that we answer "server busy" (7001) at once — never "wrong password",
// which would count against the user's lockout and mislead them (R50).
import argon2 from 'argon2';
import { Fault, faults } from '../domain/faults.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

export interface HasherOptions {
  /** Hashes or verifications running at the same time. */
  maxConcurrent?: number;
  /** Callers allowed to wait for a slot; one more is refused with SERVER_BUSY. */
  maxQueued?: number;
  /** KiB; 19456 with timeCost 2 is the OWASP minimum for argon2id. Tests pass less for speed. */
  memoryCost?: number;
  timeCost?: number;
}

export function argon2Hasher(options: HasherOptions = {}): PasswordHasher {
  const gate = new Gate(options.maxConcurrent ?? 2, options.maxQueued ?? 32);
  const params: argon2.HashOptions = { type: argon2.argon2id, memoryCost: options.memoryCost ?? 19456, timeCost: options.timeCost ?? 2, parallelism: 1 };
  return {
    hash: (password) => gate.run(() => argon2.hash(password, params)),
    // Costs are read from the stored hash, so old hashes keep verifying after a cost change.
    verify: (hash, password) => gate.run(() => argon2.verify(hash, password)),
  };
}

/** A counting semaphore with a bounded waiting line. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueued: number,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    // Decided before the first await, so callers are admitted strictly in arrival order.
    if (this.active < this.maxConcurrent) this.active++;
    else if (this.waiting.length < this.maxQueued) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else throw new Fault(faults.SERVER_BUSY, { seconds: '2' }, [], 2);
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake the line.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
