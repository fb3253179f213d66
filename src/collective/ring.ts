/**
 * Ring collectives over a flat Float32Array, written against PointToPoint. The buffer is cut
 * into `size` chunks aligned to 16 floats (so two threads never write one cache line); after a
 * reduce-scatter rank r holds the sum of chunk r. The reduction order of chunk c is fixed:
 * ((buf[c+1] + buf[c+2]) + ...) + buf[c] (ranks mod size), so results repeat bitwise.
 */
import type { PointToPoint } from './transport.js';

export const CHUNK_ALIGNMENT = 16;

/** [from, to) of chunk `index` when `length` floats are cut into `parts` aligned chunks. */
export function chunkRange(length: number, parts: number, index: number): [number, number] {
  const per = Math.ceil(Math.ceil(length / parts) / CHUNK_ALIGNMENT) * CHUNK_ALIGNMENT;
  return [Math.min(length, index * per), Math.min(length, (index + 1) * per)];
}

/** The longest chunk, i.e. the largest message a ring collective sends. */
export function maxChunkLength(length: number, parts: number): number {
  const [from, to] = chunkRange(length, parts, 0);
  return to - from;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** After it returns, `buf` of rank r holds in chunk r the sum over all ranks. */
export function ringReduceScatter(transport: PointToPoint, buf: Float32Array): void {
  const { rank, size } = transport;
  const next = mod(rank + 1, size);
  const prev = mod(rank - 1, size);
  for (let s = 0; s < size - 1; s++) {
    const [sendFrom, sendTo] = chunkRange(buf.length, size, mod(rank - 1 - s, size));
    const [recvFrom, recvTo] = chunkRange(buf.length, size, mod(rank - 2 - s, size));
    if (sendTo > sendFrom) transport.send(next, buf.subarray(sendFrom, sendTo));
    if (recvTo > recvFrom) transport.recvAdd(prev, buf.subarray(recvFrom, recvTo));
  }
}

/** Starting from chunk r valid on rank r, leaves every chunk valid on every rank. */
export function ringAllGather(transport: PointToPoint, buf: Float32Array): void {
  const { rank, size } = transport;
  const next = mod(rank + 1, size);
  const prev = mod(rank - 1, size);
  for (let s = 0; s < size - 1; s++) {
    const [sendFrom, sendTo] = chunkRange(buf.length, size, mod(rank - s, size));
    const [recvFrom, recvTo] = chunkRange(buf.length, size, mod(rank - s - 1, size));
    if (sendTo > sendFrom) transport.send(next, buf.subarray(sendFrom, sendTo));
    if (recvTo > recvFrom) transport.recv(prev, buf.subarray(recvFrom, recvTo));
  }
}

export function ringAllReduce(transport: PointToPoint, buf: Float32Array): void {
  ringReduceScatter(transport, buf);
  ringAllGather(transport, buf);
}

/**
 * Reduce-scatter read directly from every rank's slot in shared memory: rank r sums chunk r
 * over all slots in the ring's order, so the result is bitwise the ring's. The caller must
 * put a barrier before it (all slots written) and one after it (before slots are rewritten).
 */
export function directReduceScatter(slots: readonly Float32Array[], rank: number): void {
  const size = slots.length;
  const own = slots[rank]!;
  const [from, to] = chunkRange(own.length, size, rank);
  if (size === 1 || to === from) return;
  const first = slots[mod(rank + 1, size)]!;
  // Accumulate in the own slot: own chunk is read last, so save it first.
  const mine = own.slice(from, to);
  own.set(first.subarray(from, to), from);
  for (let k = 2; k < size; k++) {
    const slot = slots[mod(rank + k, size)]!;
    for (let i = from; i < to; i++) own[i] = own[i]! + slot[i]!;
  }
  for (let i = from; i < to; i++) own[i] = own[i]! + mine[i - from]!;
}
