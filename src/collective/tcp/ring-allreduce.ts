/**
 * The ring all-reduce between processes, pipelined by segments: chunks are cut as the
 * in-process ring cuts them (chunkRange), each chunk into segments of at most SEGMENT_BYTES;
 * a segment received from the previous rank is summed (reduce-scatter hops) or copied
 * (all-gather hops) and at once sent on to the next rank, so sending, receiving and summing
 * overlap across segments and hops.
 *
 * Ordering guarantee: chunk c is summed along the ring from rank c+1: ((x[c+1] + x[c+2]) + ...)
 * + x[c] (ranks mod size), the order of ring.ts, the same on every run of a world; the
 * all-gather copies the owner's bits, so every rank ends with identical values.
 */
import { chunkRange } from '../ring.js';
import { SEGMENT_BYTES } from './frame.js';

const SEGMENT_FLOATS = SEGMENT_BYTES / 4;

/** The two neighbours of a rank in the ring, as the algorithm sees them. */
export interface RingLinks {
  readonly rank: number;
  readonly size: number;
  /** Queues a segment for the next rank (the bytes are copied before this returns). */
  sendNext(segment: Float32Array, step: number): void;
  /** The next segment from the previous rank, of exactly `length` floats. */
  receivePrev(length: number, step: number): Promise<Float32Array>;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** [from, to) pieces of at most SEGMENT_FLOATS of chunk `index`. */
function segments(length: number, size: number, index: number): [number, number][] {
  const [from, to] = chunkRange(length, size, index);
  const pieces: [number, number][] = [];
  for (let start = from; start < to; start += SEGMENT_FLOATS) pieces.push([start, Math.min(to, start + SEGMENT_FLOATS)]);
  return pieces;
}

/**
 * `hops` of the ring from `firstSend`: hop h receives chunk (firstSend - 1 - h) and, when
 * `reduce`, adds it (else copies it); every hop but the last forwards what it received.
 * Returns after the last hop's segments are in `buf`.
 */
async function ringHops(links: RingLinks, buf: Float32Array, step: number, firstSend: number, hops: number, reduceHops: number): Promise<void> {
  const { size } = links;
  for (const [from, to] of segments(buf.length, size, firstSend)) links.sendNext(buf.subarray(from, to), step);
  for (let hop = 0; hop < hops; hop++) {
    const chunk = mod(firstSend - 1 - hop, size);
    const forward = hop + 1 < hops;
    for (const [from, to] of segments(buf.length, size, chunk)) {
      const incoming = await links.receivePrev(to - from, step);
      const target = buf.subarray(from, to);
      if (hop < reduceHops) {
        for (let i = 0; i < target.length; i++) target[i] = target[i]! + incoming[i]!;
      } else {
        target.set(incoming);
      }
      if (forward) links.sendNext(target, step);
    }
  }
}

/** Afterwards chunk `rank` of `buf` holds the sum over all ranks (returns its range). */
export async function ringReduceScatterTcp(links: RingLinks, buf: Float32Array, step: number): Promise<[number, number]> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, step, mod(rank - 1, size), size - 1, size - 1);
  return chunkRange(buf.length, size, rank);
}

/** From chunk `rank` valid on each rank, every chunk valid on every rank. */
export async function ringAllGatherTcp(links: RingLinks, buf: Float32Array, step: number): Promise<void> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, step, rank, size - 1, 0);
}

/** Reduce-scatter and all-gather as one pipeline: the last reduced segments go on at once. */
export async function ringAllReduceTcp(links: RingLinks, buf: Float32Array, step: number): Promise<void> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, step, mod(rank - 1, size), 2 * (size - 1), size - 1);
}
