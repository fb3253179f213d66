/**
 * Broadcast along the ring: the root sends its bytes to root+1 in segments of at most
 * SEGMENT_BYTES, every other rank copies each segment into place as it arrives and sends it
 * on, except the rank before the root. Segments pipeline along the chain, so a large buffer
 * costs about one transfer, not size - 1 of them.
 */
import { RangeWriter } from './accumulate.js';
import { desynchronised, type FrameConsumer } from './connection.js';
import { ProtocolError } from './errors.js';
import { Op, SEGMENT_BYTES } from './frame.js';
import type { RingLinks } from './ring-allreduce.js';

export async function ringBroadcast(links: RingLinks, buf: Float32Array | Uint8Array, root: number, step: number): Promise<void> {
  const { rank, size, next, prev } = links;
  if (size === 1 || buf.byteLength === 0) return;
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const forward = (rank + 1) % size !== root;
  if (rank === root) {
    for (let from = 0; from < bytes.length; from += SEGMENT_BYTES) next.send(Op.BROADCAST, step, bytes.subarray(from, from + SEGMENT_BYTES));
  } else {
    await new Promise<void>((resolve) => prev.setConsumer(new ChainSink(links, bytes, step, forward, resolve)));
  }
  await next.flushed();
}

class ChainSink implements FrameConsumer {
  readonly inPlace = true;
  private from = 0;
  private readonly writer = new RangeWriter();

  constructor(
    private readonly links: RingLinks,
    private readonly bytes: Uint8Array,
    private readonly step: number,
    private readonly forward: boolean,
    private readonly resolve: () => void,
  ) {}

  begin(op: Op, step: number, length: number): void {
    if (op !== Op.BROADCAST || step !== this.step) throw desynchronised(this.links.prev, Op.BROADCAST, this.step, op, step);
    const expected = Math.min(SEGMENT_BYTES, this.bytes.length - this.from);
    if (length !== expected) {
      throw new ProtocolError(
        `desynchronised: expected ${expected} bytes of broadcast data for step ${step} from rank ${this.links.prev.peer}, got ${length} (is the buffer the same length on every rank?)`,
      );
    }
    this.writer.beginCopy(this.bytes, this.from);
  }

  data(piece: Buffer): void {
    this.writer.write(piece);
  }

  end(): boolean {
    const to = Math.min(this.bytes.length, this.from + SEGMENT_BYTES);
    if (this.forward) this.links.next.send(Op.BROADCAST, this.step, this.bytes.subarray(this.from, to));
    this.from = to;
    if (this.from < this.bytes.length) return false;
    this.resolve();
    return true;
  }
}
