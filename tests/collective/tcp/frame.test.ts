/**
 * The codec and the receive path in isolation: frames cut at every possible point of the byte
 * stream come out the same; headers are bounded and checked before any payload is kept; bytes
 * summed into floats from pieces at any alignment give the exact float32 sums.
 */
import { describe, expect, it } from 'vitest';
import { RangeWriter } from '../../../src/collective/tcp/accumulate.js';
import { encodeHeader, FrameParser, MAX_MESSAGE_BYTES, Op, SEGMENT_BYTES, type FrameSink } from '../../../src/collective/tcp/frame.js';
import { mulberry32 } from '../../../src/util/random.js';

interface Seen {
  op: number;
  step: number;
  payload: Buffer;
}

function collector(): { sink: FrameSink; frames: Seen[] } {
  const frames: Seen[] = [];
  let parts: Buffer[] = [];
  let head: { op: number; step: number } | undefined;
  return {
    frames,
    sink: {
      header: (op, step) => ((head = { op, step }), (parts = [])),
      payload: (piece) => void parts.push(Buffer.from(piece)),
      frameEnd: () => void frames.push({ ...head!, payload: Buffer.concat(parts) }),
    },
  };
}

function frame(op: Op, step: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeHeader(op, step, payload.length), payload]);
}

describe('frames', () => {
  const stream = Buffer.concat([
    frame(Op.HEARTBEAT, 0, Buffer.alloc(0)),
    frame(Op.EXCHANGE, 12, Buffer.from('{"a":[1,2,3]}')),
    frame(Op.ALL_REDUCE, -1, Buffer.from(new Float32Array([1.5, -2, 3e-7]).buffer)),
    frame(Op.ALL_REDUCE, 2 ** 40 + 3, Buffer.alloc(0)),
    frame(Op.GOODBYE, 7, Buffer.alloc(0)),
  ]);

  it('come out whole and in order wherever the stream is cut, with steps up to 2^53', () => {
    const whole = collector();
    new FrameParser(whole.sink, 'rank 1').push(stream);
    expect(whole.frames.map((f) => [f.op, f.step, f.payload.length])).toEqual([
      [Op.HEARTBEAT, 0, 0],
      [Op.EXCHANGE, 12, 13],
      [Op.ALL_REDUCE, -1, 12],
      [Op.ALL_REDUCE, 2 ** 40 + 3, 0],
      [Op.GOODBYE, 7, 0],
    ]);
    for (let cut = 1; cut < stream.length; cut++) {
      for (const second of [cut + 1, cut + 5, stream.length]) {
        const split = collector();
        const parser = new FrameParser(split.sink, 'rank 1');
        parser.push(stream.subarray(0, cut));
        parser.push(stream.subarray(cut, second));
        parser.push(stream.subarray(second));
        expect(split.frames).toEqual(whole.frames);
      }
    }
  });

  it('a length beyond the operation limit is refused on the header, before any payload is kept', () => {
    for (const [op, length, limit, name] of [
      [Op.ALL_REDUCE, 0xffffffff, SEGMENT_BYTES, 'all-reduce data'],
      [Op.EXCHANGE, MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES, 'exchange'],
      [Op.HEARTBEAT, 1, 0, 'heartbeat'],
    ] as const) {
      const seen = collector();
      const parser = new FrameParser(seen.sink, 'rank 3 (host 10.0.0.3)');
      expect(() => parser.push(encodeHeader(op, 5, length))).toThrow(`refused a frame of ${length} bytes (${name}) from rank 3 (host 10.0.0.3): the limit is ${limit} bytes`);
      expect(seen.frames).toEqual([]);
    }
  });

  it('an unknown operation or another protocol version is refused', () => {
    const unknown = encodeHeader(Op.BARRIER, 0, 0);
    unknown.writeUInt8(99, 4);
    expect(() => new FrameParser(collector().sink, 'rank 1').push(unknown)).toThrow('unknown operation code 99 in a frame from rank 1');
    const version = encodeHeader(Op.BARRIER, 0, 0);
    version.writeUInt8(2, 5);
    expect(() => new FrameParser(collector().sink, 'rank 1').push(version)).toThrow(/bad frame header from rank 1/);
  });
});

describe('summing received bytes into floats', () => {
  it('is exact for pieces cut anywhere and at any alignment, and a copy is a copy', () => {
    const random = mulberry32(3);
    const n = 5000;
    const base = Float32Array.from({ length: n }, () => (random() - 0.5) * 1e3);
    const incoming = Float32Array.from({ length: n }, () => (random() - 0.5) * 1e-2);
    const expected = base.map((x, i) => Math.fround(x + incoming[i]!));
    const bytes = Buffer.from(incoming.buffer);
    for (let trial = 0; trial < 50; trial++) {
      // Pieces of random sizes, each placed at a random byte offset of its own buffer.
      const pieces: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = Math.min(bytes.length - at, 1 + Math.floor(random() * (trial < 25 ? 9 : 70_000)));
        const shift = Math.floor(random() * 4);
        const holder = Buffer.alloc(size + shift);
        bytes.copy(holder, shift, at, at + size);
        pieces.push(holder.subarray(shift));
        at += size;
      }
      const dst = new Float32Array(n + 8);
      dst.set(base, 3);
      const writer = new RangeWriter();
      writer.begin(dst, new Uint8Array(dst.buffer), 3, true);
      for (const piece of pieces) writer.write(piece);
      expect(Array.from(dst.subarray(3, 3 + n))).toEqual(Array.from(expected));
      expect(dst[2]).toBe(0);
      expect(dst[3 + n]).toBe(0);

      const copy = new Float32Array(n + 8);
      writer.begin(copy, new Uint8Array(copy.buffer), 3, false);
      for (const piece of pieces) writer.write(piece);
      expect(Array.from(copy.subarray(3, 3 + n))).toEqual(Array.from(incoming));
    }
  });
});
