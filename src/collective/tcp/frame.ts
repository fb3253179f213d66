/**
 * The frame codec. After authentication every byte on a connection belongs to a frame:
 *
 *   offset 0   u32 LE  payload length in bytes
 *   offset 4   u8      operation code (Op)
 *   offset 5   u8      protocol version (1)
 *   offset 6   u16     zero
 *   offset 8   u32 LE  step, low 32 bits     } the step of the collective, a signed 64-bit
 *   offset 12  i32 LE  step, high 32 bits    } integer (-1 during rendezvous)
 *   offset 16  payload
 *
 * Every operation has a payload limit, checked when the header is complete, before a byte of
 * the payload is kept: a peer claiming 4 GiB is refused without allocating anything.
 */
import { ProtocolError } from './errors.js';

export const HEADER_BYTES = 16;
export const PROTOCOL_VERSION = 1;
/** The largest data segment: ring chunks are cut into segments of at most this many bytes. */
export const SEGMENT_BYTES = 1 << 20;
export const SEGMENT_FLOATS = SEGMENT_BYTES / 4;
/** The largest JSON message (hello, table entry, exchange value). */
export const MAX_MESSAGE_BYTES = 1 << 20;
export const MAX_ABORT_BYTES = 64 << 10;
/** Frames of the rendezvous carry this step. */
export const RENDEZVOUS_STEP = -1;

export const Op = {
  // Rendezvous, on the control connections.
  HELLO: 1,
  TABLE: 2,
  READY: 3,
  GO: 4,
  // Collectives on the control connections (rank 0 gathers, then answers every rank).
  EXCHANGE: 5,
  BARRIER: 6,
  // Collectives on the ring.
  ALL_REDUCE: 16,
  REDUCE_SCATTER: 17,
  ALL_GATHER: 18,
  BROADCAST: 19,
  // Out of band: handled on arrival, never queued behind data.
  HEARTBEAT: 32,
  ABORT: 33,
  GOODBYE: 34,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

const NAMES: Record<Op, string> = {
  [Op.HELLO]: 'hello',
  [Op.TABLE]: 'rendezvous table',
  [Op.READY]: 'ready',
  [Op.GO]: 'go',
  [Op.EXCHANGE]: 'exchange',
  [Op.BARRIER]: 'barrier',
  [Op.ALL_REDUCE]: 'all-reduce data',
  [Op.REDUCE_SCATTER]: 'reduce-scatter data',
  [Op.ALL_GATHER]: 'all-gather data',
  [Op.BROADCAST]: 'broadcast data',
  [Op.HEARTBEAT]: 'heartbeat',
  [Op.ABORT]: 'abort',
  [Op.GOODBYE]: 'goodbye',
};

const LIMITS: Record<Op, number> = {
  [Op.HELLO]: MAX_MESSAGE_BYTES,
  [Op.TABLE]: MAX_MESSAGE_BYTES,
  [Op.READY]: 0,
  [Op.GO]: 0,
  [Op.EXCHANGE]: MAX_MESSAGE_BYTES,
  [Op.BARRIER]: 0,
  [Op.ALL_REDUCE]: SEGMENT_BYTES,
  [Op.REDUCE_SCATTER]: SEGMENT_BYTES,
  [Op.ALL_GATHER]: SEGMENT_BYTES,
  [Op.BROADCAST]: SEGMENT_BYTES,
  [Op.HEARTBEAT]: 0,
  [Op.ABORT]: MAX_ABORT_BYTES,
  [Op.GOODBYE]: 0,
};

export function opName(op: Op): string {
  return NAMES[op];
}

export function isOutOfBand(op: Op): boolean {
  return op === Op.HEARTBEAT || op === Op.ABORT || op === Op.GOODBYE;
}

function isOp(value: number): value is Op {
  return Object.prototype.hasOwnProperty.call(NAMES, value);
}

const TWO_32 = 2 ** 32;

export function encodeHeader(op: Op, step: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt8(op, 4);
  header.writeUInt8(PROTOCOL_VERSION, 5);
  header.writeUInt16LE(0, 6);
  const high = Math.floor(step / TWO_32);
  header.writeUInt32LE(step - high * TWO_32, 8);
  header.writeInt32LE(high, 12);
  return header;
}

/** Receives the frames a parser cuts from the byte stream, in order. */
export interface FrameSink {
  /** A header was read and checked; `length` payload bytes follow. */
  header(op: Op, step: number, length: number): void;
  /** The next piece of the current frame's payload (a view on the received bytes). */
  payload(piece: Buffer): void;
  /** The current frame is complete. */
  frameEnd(): void;
}

/**
 * Cuts a byte stream into frames. Payload pieces are views on the received buffers (no copy);
 * the sink decides whether to consume them at once or keep them.
 */
export class FrameParser {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** Payload bytes still to come of the current frame, or -1 between frames. */
  private remaining = -1;

  constructor(
    private readonly sink: FrameSink,
    /** e.g. "rank 1", for error messages. */
    private readonly from: string,
  ) {}

  /** Throws ProtocolError on a bad header; the caller must then drop the connection. */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.remaining < 0) {
        const take = Math.min(HEADER_BYTES - this.headerFill, end - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.headerFill = 0;
        const [op, step, length] = this.decode();
        this.sink.header(op, step, length);
        if (length === 0) this.sink.frameEnd();
        else this.remaining = length;
      } else {
        const take = Math.min(this.remaining, end - pos);
        this.sink.payload(pos === 0 && take === end ? chunk : chunk.subarray(pos, pos + take));
        pos += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          this.remaining = -1;
          this.sink.frameEnd();
        }
      }
    }
  }

  private decode(): [Op, number, number] {
    const h = this.header;
    if (h.readUInt8(5) !== PROTOCOL_VERSION || h.readUInt16LE(6) !== 0) {
      throw new ProtocolError(`bad frame header from ${this.from} (a different protocol version, or a corrupted stream)`);
    }
    const code = h.readUInt8(4);
    if (!isOp(code)) throw new ProtocolError(`unknown operation code ${code} in a frame from ${this.from}`);
    const length = h.readUInt32LE(0);
    const limit = LIMITS[code];
    if (length > limit) {
      throw new ProtocolError(
        `refused a frame of ${length} bytes (${opName(code)}) from ${this.from}: the limit is ${limit} bytes`,
      );
    }
    const step = h.readInt32LE(12) * TWO_32 + h.readUInt32LE(8);
    return [code, step, length];
  }
}
