/**
 * Ring all-reduce between real processes over TCP (127.0.0.1): world sizes 2, 3 and 4; buffer
 * lengths 0, 1, size - 1, one not divisible by the size, and one whose chunks span several
 * 1 MiB segments. Every rank must end with the sum in the ring's fixed order, bitwise, and a
 * repeat must give the same bits. (The fixed order is the one of ../ring.ts, so the result is
 * also bitwise the in-process ring's.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SEGMENT_FLOATS } from '../../../src/collective/tcp/frame.js';
import { expectedSum, firstBitwiseDifference, floatsOf, inputOf, killAll, startWorld } from './harness.js';

afterEach(killAll);

const SEED = 1234;

describe('TCP ring all-reduce between processes', () => {
  for (const size of [2, 3, 4]) {
    const lengths = [0, 1, size - 1, 4099, size * SEGMENT_FLOATS + 4099];
    // Size 3 all-reduces buffers on SharedArrayBuffers, as the replicas hand them over.
    const shared = size === 3;
    it(`world of ${size}: lengths ${lengths.join(', ')} are exact in the ring's order on every rank, and repeat bitwise${shared ? ' (shared memory)' : ''}`, async () => {
      const ranks = await startWorld(size, { scenario: 'allReduce', lengths, repeats: 2, seed: SEED, shared });
      const outcomes = await Promise.all(ranks.map((r) => r.outcome(60_000)));
      for (const outcome of outcomes) expect(outcome.type, String(outcome.message)).toBe('done');
      for (const [index, length] of lengths.entries()) {
        const inputs = Array.from({ length: size }, (_, rank) => inputOf(SEED, rank, length));
        const expected = expectedSum(inputs, length);
        for (const [rank, outcome] of outcomes.entries()) {
          const { outputs } = (outcome.results as { length: number; outputs: string[] }[])[index]!;
          expect(outputs).toHaveLength(2);
          for (const [repeat, output] of outputs.entries()) {
            const got = floatsOf(output);
            expect(got.length).toBe(length);
            const at = firstBitwiseDifference(got, expected);
            expect(at, `rank ${rank}, length ${length}, repeat ${repeat}: element ${at} is ${got[at]}, expected ${expected[at]}`).toBe(-1);
          }
          expect(outputs[1]).toBe(outputs[0]);
        }
      }
    });
  }
});
