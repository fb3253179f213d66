import { describe, expect, it } from 'vitest';
import { epochPermutation, globalBatchRange, replicaSlice, stepsPerEpoch } from '../../src/data/sampler.js';

describe('sampler', () => {
  it('visits every index exactly once per epoch for N = 1..5, uneven last batch included', () => {
    for (const [size, batchSize] of [[103, 10], [64, 32], [7, 4], [5, 8], [1, 1]] as const) {
      for (let replicas = 1; replicas <= 5; replicas++) {
        for (const epoch of [0, 1]) {
          const order = epochPermutation(size, 7, epoch);
          const seen = new Array<number>(size).fill(0);
          const steps = stepsPerEpoch(size, batchSize);
          for (let step = 0; step < steps; step++) {
            const [from, to] = globalBatchRange(size, batchSize, step);
            const sizes: number[] = [];
            let next = from;
            for (let rank = 0; rank < replicas; rank++) {
              const [a, b] = replicaSlice(to - from, replicas, rank);
              expect(from + a).toBe(next); // contiguous, in rank order
              next = from + b;
              sizes.push(b - a);
              for (let i = from + a; i < from + b; i++) seen[order[i]!]!++;
            }
            expect(next).toBe(to);
            expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          }
          expect(seen).toEqual(new Array<number>(size).fill(1));
        }
      }
    }
  });

  it('trains the last partial batch instead of dropping it', () => {
    expect(stepsPerEpoch(103, 10)).toBe(11);
    expect(globalBatchRange(103, 10, 10)).toEqual([100, 103]);
  });

  it('is a seeded permutation: same seed and epoch repeat, others differ', () => {
    const a = Array.from(epochPermutation(1000, 42, 3));
    expect(Array.from(epochPermutation(1000, 42, 3))).toEqual(a);
    expect(Array.from(epochPermutation(1000, 42, 4))).not.toEqual(a);
    expect(Array.from(epochPermutation(1000, 43, 3))).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(epochPermutation(5, 42, 0, false))).toEqual([0, 1, 2, 3, 4]);
  });
});
