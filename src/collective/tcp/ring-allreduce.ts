/**
 * Ring reduce-scatter, all-gather and all-reduce between processes, pipelined as gloo's ring:
 * the buffer is cut into `size` chunks exactly as the in-process ring cuts it (chunkRange of
 * ../ring.ts), each chunk into segments of at most SEGMENT_BYTES. Rank r sends to r+1 and
 * receives from r-1. Its first chunk goes out whole at once (TCP keeps several segments in
 * flight); from then on every segment received is summed (or copied) straight from the
 * received bytes as they arrive and, when complete, sent on at once, so sending, receiving and
 * summing overlap across segments and hops. The schedule is driven by arrivals, on the main
 * thread's event loop, with no await per segment.
 *
 * Ordering guarantee (as ../ring.ts): chunk c is summed along the ring starting at rank c+1,
 * ((x[c+1] + x[c+2]) + ...) + x[c] (ranks mod size), in float32, element by element. The order
 * depends only on the world size and the buffer length, so repeats are bitwise identical, and
 * equal to the in-process ring's; the all-gather copies the owner's bits, so every rank ends
 * with identical values. Empty chunks and segments are not sent: both ends skip them alike.
 */
import { chunkRange } from '../ring.js';
import { RangeWriter } from './accumulate.js';
import { desynchronised, type Connection, type FrameConsumer } from './connection.js';
import { ProtocolError } from './errors.js';
import { Op, opName, SEGMENT_FLOATS } from './frame.js';

export interface RingLinks {
  readonly rank: number;
  readonly size: number;
  /** The connection to rank + 1 (only written). */
  readonly next: Connection;
  /** The connection from rank - 1 (only read). */
  readonly prev: Connection;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * Runs `hops` hops of the ring: first sends chunk `firstSend`, then hop h receives chunk
 * firstSend - 1 - h, summing it for the first `reduceHops` hops and copying it after, and
 * forwards it unless it is the last hop. Resolves when the last segment arrived and every
 * frame sent has left this process (so the caller may reuse `buf`).
 */
async function ringHops(links: RingLinks, buf: Float32Array, op: Op, step: number, firstSend: number, hops: number, reduceHops: number): Promise<void> {
  const { size, next, prev } = links;
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const [sendFrom, sendTo] = chunkRange(buf.length, size, firstSend);
  for (let from = sendFrom; from < sendTo; from += SEGMENT_FLOATS) {
    next.send(op, step, bytes.subarray(from * 4, Math.min(sendTo, from + SEGMENT_FLOATS) * 4));
  }
  const sink = new RingSink(links, buf, bytes, op, step, firstSend, hops, reduceHops);
  if (!sink.finished) {
    await new Promise<void>((resolve) => {
      sink.onFinished = resolve;
      prev.setConsumer(sink);
    });
  }
  await next.flushed();
}

/** Consumes the frames of the ring schedule from the previous rank. */
class RingSink implements FrameConsumer {
  readonly inPlace = true;
  finished = false;
  onFinished: () => void = () => undefined;
  private hop = -1;
  private chunkTo = 0;
  private from = 0;
  private to = 0;
  private readonly writer = new RangeWriter();

  constructor(
    private readonly links: RingLinks,
    private readonly buf: Float32Array,
    private readonly bytes: Uint8Array,
    private readonly op: Op,
    private readonly step: number,
    private readonly firstSend: number,
    private readonly hops: number,
    private readonly reduceHops: number,
  ) {
    this.advance();
  }

  begin(op: Op, step: number, length: number): void {
    if (op !== this.op || step !== this.step) throw desynchronised(this.links.prev, this.op, this.step, op, step);
    const expected = (this.to - this.from) * 4;
    if (length !== expected) {
      throw new ProtocolError(
        `desynchronised: expected ${expected} bytes of ${opName(op)} for step ${step} from rank ${this.links.prev.peer}, got ${length} (is the buffer the same length on every rank?)`,
      );
    }
    this.writer.begin(this.buf, this.bytes, this.from, this.hop < this.reduceHops);
  }

  data(piece: Buffer): void {
    this.writer.write(piece);
  }

  end(): boolean {
    if (this.hop < this.hops - 1) this.links.next.send(this.op, this.step, this.bytes.subarray(this.from * 4, this.to * 4));
    this.advance();
    if (this.finished) this.onFinished();
    return this.finished;
  }

  /** Moves to the next non-empty segment of the schedule, or finishes. */
  private advance(): void {
    this.from = this.to;
    while (this.from >= this.chunkTo) {
      if (++this.hop >= this.hops) {
        this.finished = true;
        return;
      }
      [this.from, this.chunkTo] = chunkRange(this.buf.length, this.links.size, mod(this.firstSend - 1 - this.hop, this.links.size));
    }
    this.to = Math.min(this.chunkTo, this.from + SEGMENT_FLOATS);
  }
}

/** Afterwards chunk `rank` of `buf` holds the sum over all ranks; returns its range. */
export async function ringReduceScatter(links: RingLinks, buf: Float32Array, step: number): Promise<[number, number]> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, Op.REDUCE_SCATTER, step, mod(rank - 1, size), size - 1, size - 1);
  return chunkRange(buf.length, size, rank);
}

/** From chunk `rank` valid on each rank, every chunk valid on every rank. */
export async function ringAllGather(links: RingLinks, buf: Float32Array, step: number): Promise<void> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, Op.ALL_GATHER, step, rank, size - 1, 0);
}

/** Reduce-scatter and all-gather as one pipeline: the last reduced segments go on at once. */
export async function ringAllReduce(links: RingLinks, buf: Float32Array, step: number): Promise<void> {
  const { rank, size } = links;
  if (size > 1) await ringHops(links, buf, Op.ALL_REDUCE, step, mod(rank - 1, size), 2 * (size - 1), size - 1);
}
