/**
 * The TCP process group between real processes on loopback, in worlds of 2, 3 and 4: all-reduce
 * of 0, 1, size - 1, 100003 (divisible by no world size) and more than one segment per chunk
 * floats equals, bitwise, a sequential float32 sum in the ring's fixed order (chunk c from rank
 * c + 1 round to rank c), on every rank, and a repeat gives the same bits; exchange returns every
 * rank's value in rank order; nobody leaves a barrier before the last rank entered it; broadcasts
 * from rank 0 and from rank size - 1 (one short, one of two segments) deliver the root's bits.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll } from '../../helpers/processes.js';
import {
  broadcastPattern, chunkExceedsSegment, expectBitwise, expectedSum, fromBase64, resultOf, SEGMENT_FLOATS, sha256, startWorld,
} from './world.js';

afterEach(killAll);

const SEED = 20261201;
const BROADCAST_LENGTHS = [7, SEGMENT_FLOATS + 37];

describe.each([2, 3, 4])('a world of %i processes on loopback', (size) => {
  // The last length gives every rank a chunk of more than one segment (262144 floats).
  const lengths = [...new Set([0, 1, size - 1, 100003, SEGMENT_FLOATS * size + 4099])];

  it(`all-reduce of ${lengths.join(', ')} floats is bitwise the sequential float32 sum in ring order on every rank, twice; exchange, barrier, broadcast from 0 and ${size - 1}`, async () => {
    expect(chunkExceedsSegment(lengths.at(-1)!, size)).toBe(true);
    const port = await freePort();
    const ranks = startWorld(size, (rank) => ({
      rank, size, port, scenario: 'collectives', seed: SEED, lengths, repeats: 2, broadcastLengths: BROADCAST_LENGTHS, timeoutMs: 20_000, stepTimeoutMs: 20_000,
    }));
    const codes = await Promise.all(ranks.map((r) => r.exited(60_000)));
    expect(codes, ranks.map((r) => r.stderr()).join('\n')).toEqual(ranks.map(() => 0));
    const results = ranks.map(resultOf);

    for (const [index, length] of lengths.entries()) {
      const expected = expectedSum(SEED, size, length);
      const expectedHash = sha256(expected);
      for (const result of results) {
        const entry = result.allReduce[index];
        expect(entry.length).toBe(length);
        expectBitwise(fromBase64(entry.base64), expected, `rank ${result.rank}, ${length} floats`);
        // Both repeats, bit for bit (and so identical on every rank).
        expect(entry.hashes, `rank ${result.rank}, ${length} floats, repeats`).toEqual([expectedHash, expectedHash]);
      }
    }

    const everyValue = Array.from({ length: size }, (_, rank) => ({ rank, text: `from rank ${rank}`, nested: [rank, rank * rank] }));
    for (const result of results) expect(result.exchanged).toEqual(everyValue);

    const lastEntered = Math.max(...results.map((r) => r.barrierEntered as number));
    const firstLeft = Math.min(...results.map((r) => r.barrierLeft as number));
    expect(firstLeft).toBeGreaterThanOrEqual(lastEntered);

    const expectedBroadcasts = [0, size - 1].flatMap((root) => BROADCAST_LENGTHS.map((length) => ({ root, length, hash: sha256(broadcastPattern(root, length)) })));
    for (const result of results) {
      expect(result.broadcasts).toEqual(expectedBroadcasts);
      expect(result.hosts).toEqual(Array.from({ length: size }, () => '127.0.0.1'));
    }
  });
});
