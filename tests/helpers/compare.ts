/**
 * The tolerance measure of the kernel tests: max |actual - expected| over max(1, max |expected|),
 * Infinity when a difference is NaN. The lengths must match.
 */
import { expect } from 'vitest';

export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}
