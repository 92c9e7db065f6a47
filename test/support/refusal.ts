import { BridgeError } from '../../src/core/errors.js';

/** The BridgeError `f` throws; fails the test when it throws nothing or something else. */
export function refusal(f: () => unknown): BridgeError {
  try {
    f();
  } catch (err) {
    if (err instanceof BridgeError) return err;
    throw err;
  }
  throw new Error('expected a BridgeError, nothing was thrown');
}
