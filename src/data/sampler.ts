/**
 * The sampler: a seeded permutation per epoch; global batch k is the next `batchSize` indices
 * of it, and replica r takes the r-th contiguous slice of that batch (sizes differ by at most
 * one). The last partial batch is trained, as Keras does. Every replica computes the same
 * permutation from (seed, epoch), so no indices are sent between threads.
 */
import { mixSeed, mulberry32 } from '../util/random.js';

export function epochPermutation(size: number, seed: number, epoch: number, shuffle = true): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  if (!shuffle) return order;
  const random = mulberry32(mixSeed(seed, epoch));
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export function stepsPerEpoch(size: number, batchSize: number): number {
  return Math.ceil(size / batchSize);
}

/** [from, to) positions in the epoch permutation of global batch `step`. */
export function globalBatchRange(size: number, batchSize: number, step: number): [number, number] {
  const from = step * batchSize;
  return [from, Math.min(size, from + batchSize)];
}

/** [from, to) of replica `rank`'s contiguous share of `count` items split over `replicas`. */
export function replicaSlice(count: number, replicas: number, rank: number): [number, number] {
  const base = Math.floor(count / replicas);
  const extra = count % replicas;
  const from = rank * base + Math.min(rank, extra);
  return [from, from + base + (rank < extra ? 1 : 0)];
}
