import { Fault } from '../../src/domain/faults.js';

/** The Fault that `run` throws; anything else thrown, or nothing, fails the test. */
export function faultOf(run: () => unknown): Fault {
  try {
    run();
  } catch (error) {
    if (error instanceof Fault) return error;
    throw error;
  }
  throw new Error('expected a Fault, nothing was thrown');
}
