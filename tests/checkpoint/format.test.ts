import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCrcs, crc32c, crc32cCombine, formatCrc } from '../../src/checkpoint/crc32c.js';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import {
  CHECKPOINT_PROTO_FILE,
  decodeCheckpoint,
  encodeCheckpoint,
  planCheckpoint,
  readCheckpointFile,
  sealCheckpoint,
} from '../../src/checkpoint/format.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { UserError } from '../../src/errors.js';
import { bytesOf, checkpointErrorOf, makeState } from './fixtures.js';

const FILE = 'runs/x/ckpt-e0002-s001234.rtckpt';

/** The envelope as documented in proto/checkpoint.proto, built independently of format.ts. */
function envelope(payload: Uint8Array, options: { version?: number; magic?: string; flags?: number } = {}): Uint8Array {
  const out = new Uint8Array(32 + payload.length);
  out.set(new TextEncoder().encode(options.magic ?? 'RTCKPT\r\n'), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, options.version ?? 1, true);
  view.setUint32(12, options.flags ?? 0, true);
  view.setBigUint64(16, BigInt(payload.length), true);
  view.setUint32(24, crc32c(payload), true);
  view.setUint32(28, crc32c(out.subarray(0, 28)), true);
  out.set(payload, 32);
  return out;
}

function decodeError(bytes: Uint8Array): CheckpointError {
  try {
    decodeCheckpoint(bytes, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error).toBeInstanceOf(UserError);
    const e = error as CheckpointError;
    expect(e.file).toBe(FILE);
    expect(e.message.startsWith(`${FILE}: `)).toBe(true);
    return e;
  }
  throw new Error('expected a CheckpointError, but the damaged bytes decoded');
}

/** Byte-exact equality of two arrays (toEqual is slow on megabytes). */
function expectSameBytes(found: Float32Array | Uint8Array, expected: Float32Array | Uint8Array): void {
  expect(found.byteLength).toBe(expected.byteLength);
  expect(Buffer.from(bytesOf(found)).equals(bytesOf(expected))).toBe(true);
}

function expectSameState(a: CheckpointState, b: CheckpointState): void {
  expectSameBytes(b.params, a.params);
  expect(b.optimizer.state.map((t) => t.name)).toEqual(a.optimizer.state.map((t) => t.name));
  b.optimizer.state.forEach((t, i) => {
    expect(t.shape).toEqual(a.optimizer.state[i]!.shape);
    expectSameBytes(t.values, a.optimizer.state[i]!.values);
  });
  const strip = (s: CheckpointState) => ({
    ...s,
    params: undefined,
    optimizer: { ...s.optimizer, state: undefined },
    rngStates: s.rngStates.map((r) => ({ name: r.name, state: Array.from(r.state) })),
  });
  expect(strip(b)).toEqual(strip(a));
}

describe('crc32c', () => {
  const text = new TextEncoder().encode('123456789');
  const big = new Uint8Array(3_500_017);
  for (let i = 0; i < big.length; i++) big[i] = (Math.imul(i, 2654435761) >>> 13) & 255;
  const bytewise = (bytes: Uint8Array): number => {
    let c = 0xffffffff;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };

  it('matches the check value and a plain bit-by-bit CRC32C at every alignment and length', () => {
    expect(crc32c(text)).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    for (const [start, length] of [[0, 1], [1, 63], [3, 64], [2, 100], [5, 1000], [7, 4099], [0, 32 * 50 + 7]] as const) {
      const slice = big.subarray(start, start + length);
      expect(crc32c(slice)).toBe(bytewise(slice));
    }
  });

  it('continues across pieces and combines CRCs without the data', () => {
    const a = big.subarray(0, 1_000_001);
    const b = big.subarray(1_000_001, 2_345_678);
    expect(crc32c(b, crc32c(a))).toBe(crc32c(big.subarray(0, 2_345_678)));
    expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(crc32c(big.subarray(0, 2_345_678)));
    expect(crc32cCombine(0, crc32c(b), b.length)).toBe(crc32c(b));
    expect(crc32cCombine(crc32c(a), 0, 0)).toBe(crc32c(a));
    expect(formatCrc(0xe3069283)).toBe('0xe3069283');
    expect(formatCrc(5)).toBe('0x00000005');
  });

  it('gives the CRC of any range from block CRCs', () => {
    const blocks = new BlockCrcs(big.subarray(3));
    const inner = big.subarray(3);
    for (const [start, end] of [[0, inner.length], [0, 0], [10, 20], [1, 2_100_000], [1 << 20, 3 << 20], [5, inner.length - 1], [(1 << 20) + 1, inner.length]]) {
      expect(blocks.range(start!, end!)).toBe(crc32c(inner.subarray(start, end)));
    }
  });
});

describe('encode and decode', () => {
  it('round-trips a realistic state exactly', () => {
    const state = makeState();
    const bytes = encodeCheckpoint(state);
    const back = decodeCheckpoint(bytes, FILE);
    expectSameState(state, back);
    // NaN, +-Infinity in the history survive; -0 and NaN payloads in tensors are bit-exact.
    expect((back.history[1] as { loss: number }).loss).toBeNaN();
    expect((back.history[1] as { extra: number[] }).extra).toEqual([Infinity, -1e308]);
    expect(Object.is(back.params[1], -0)).toBe(true);
    // Fresh arrays, not views of the file's buffer.
    expect(back.params.buffer).not.toBe(bytes.buffer);
    expect(back.optimizer.state[0]!.values.buffer).not.toBe(bytes.buffer);
    expect(back.rngStates[0]!.state.buffer).not.toBe(bytes.buffer);
  });

  it('is deterministic, and a snapshot: changing the arrays afterwards does not change the bytes', () => {
    const state = makeState();
    const bytes = encodeCheckpoint(state);
    expect(encodeCheckpoint(makeState())).toEqual(bytes);
    const copy = bytes.slice();
    state.params.fill(7);
    state.optimizer.state[0]!.values.fill(7);
    expect(bytes).toEqual(copy);
  });

  it('encodes arrays in SharedArrayBuffers and at odd offsets, and an optimizer without state', () => {
    const state = makeState({ units: 3 });
    const n = state.params.length;
    const shared = new Float32Array(new SharedArrayBuffer((n + 1) * 4), 4, n);
    shared.set(state.params);
    const sgd: CheckpointState = {
      ...state,
      params: shared,
      optimizer: { name: 'sgd', hyperParameters: { learningRate: 0.01, momentum: 0, nesterov: false }, step: 0, state: [] },
      position: { epoch: 0, stepInEpoch: 0, globalStep: 0, samplesSeen: 0 },
      sampler: { seed: 0xffff_ffff, shuffle: false },
      rngStates: [],
      history: [],
    };
    const back = decodeCheckpoint(encodeCheckpoint(sgd), FILE);
    expect(bytesOf(back.params)).toEqual(bytesOf(state.params));
    expect(back.optimizer).toEqual(sgd.optimizer);
    expect(back.position).toEqual(sgd.position);
    expect(back.sampler).toEqual(sgd.sampler);
    expect(back.rngStates).toEqual([]);
    expect(back.history).toEqual([]);
  });

  it('rejects an inconsistent state when encoding', () => {
    const state = makeState();
    expect(() => encodeCheckpoint({ ...state, params: state.params.subarray(1) })).toThrow(
      "encodeCheckpoint: layout[2] 'dense_Dense2/kernel': [12560, 12720) is outside params (12719 values)",
    );
    const short = { ...state.optimizer, state: [{ name: 'm', shape: [5], values: new Float32Array(5) }] };
    expect(() => encodeCheckpoint({ ...state, optimizer: short })).toThrow("encodeCheckpoint: optimizer state 'm' has 5 values, params has 12720");
    expect(() => encodeCheckpoint({ ...state, replicas: 1.5 })).toThrow('encodeCheckpoint: replicas must be an integer from 0 to 4294967295, got 1.5');
  });

  it('plans the file without copying the tensors, and seals it like encodeCheckpoint', () => {
    const state = makeState();
    const plan = planCheckpoint(state);
    const bytes = encodeCheckpoint(state);
    expect(plan.length).toBe(bytes.length);
    const data = plan.segments.filter((s) => s.tensor !== undefined);
    expect(data.map((s) => s.bytes.buffer)).toEqual([state.params.buffer, state.optimizer.state[0]!.values.buffer, state.optimizer.state[1]!.values.buffer]);
    // The segments tile the payload in order.
    let at = 32;
    for (const s of plan.segments) {
      expect(s.at).toBe(at);
      at += s.bytes.length;
    }
    expect(at).toBe(bytes.length);
    sealCheckpoint(plan);
    const assembled = new Uint8Array(plan.length);
    assembled.set(plan.header, 0);
    for (const s of plan.segments) assembled.set(s.bytes, s.at);
    expect(assembled).toEqual(bytes);
  });

  it('writes the documented envelope around a protobuf Checkpoint message', () => {
    const state = makeState();
    const bytes = encodeCheckpoint(state);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('RTCKPT\r\n');
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(view.getUint32(8, true)).toBe(1);
    expect(view.getUint32(12, true)).toBe(0);
    expect(Number(view.getBigUint64(16, true))).toBe(bytes.length - 32);
    expect(view.getUint32(24, true)).toBe(crc32c(bytes.subarray(32)));
    expect(view.getUint32(28, true)).toBe(crc32c(bytes.subarray(0, 28)));
    // Any protobuf reader can decode the payload with the .proto alone.
    const Checkpoint = protobuf.loadSync(CHECKPOINT_PROTO_FILE).lookupType('ringtrain.checkpoint.Checkpoint');
    const message = Checkpoint.toObject(Checkpoint.decode(bytes.subarray(32)), { longs: Number, defaults: true }) as any;
    expect(message.format).toBe('ringtrain.checkpoint');
    expect(message.formatVersion).toBe(1);
    expect(message.params.name).toBe('params');
    expect(message.params.shape).toEqual([state.params.length]);
    expect(message.params.crc32c).toBe(crc32c(bytesOf(state.params)));
    expect(Buffer.from(message.params.data)).toEqual(Buffer.from(bytesOf(state.params)));
    expect(message.optimizer.state.map((t: any) => [t.name, t.crc32c])).toEqual([
      ['m', crc32c(bytesOf(state.optimizer.state[0]!.values))],
      ['v', crc32c(bytesOf(state.optimizer.state[1]!.values))],
    ]);
    expect(message.optimizer.hyperParameters.amsgrad).toEqual({ flag: false });
    expect(message.layout[1]).toEqual({ name: 'dense_Dense1/bias', shape: [16], dtype: 'float32', offset: 12544, size: 16 });
    expect(JSON.parse(message.configJson)).toEqual(state.config);
  });
});

describe('damaged files', () => {
  const state = makeState();
  const good = encodeCheckpoint(state);
  const payloadLength = good.length - 32;
  const layout = planCheckpoint(state);
  const storedCrc = new DataView(good.buffer, good.byteOffset).getUint32(24, true);
  const storedHeaderCrc = new DataView(good.buffer, good.byteOffset).getUint32(28, true);

  it('empty file', () => {
    expect(decodeError(new Uint8Array(0)).message).toBe(`${FILE}: empty file (0 bytes), not a ringtrain checkpoint`);
  });

  it('truncated at several cut points', () => {
    for (const cut of [1, 4, 8, 20, 31]) {
      const e = decodeError(good.subarray(0, cut));
      expect(e.problem).toBe('truncated');
      expect(e.message).toBe(`${FILE}: truncated: expected at least 32 bytes (the header), found ${cut}`);
    }
    for (const cut of [32, 33, 100, layout.tensors[0]!.start + 10, Math.floor(good.length / 2), layout.tensors[2]!.start, good.length - 1]) {
      const e = decodeError(good.subarray(0, cut));
      expect(e.message).toBe(
        `${FILE}: truncated: expected ${good.length} bytes (32-byte header + ${payloadLength}-byte payload), found ${cut}`,
      );
    }
  });

  it('trailing data', () => {
    const longer = new Uint8Array(good.length + 3);
    longer.set(good);
    expect(decodeError(longer).message).toBe(
      `${FILE}: unexpected trailing data: expected ${good.length} bytes (32-byte header + ${payloadLength}-byte payload), found ${good.length + 3}`,
    );
  });

  it('wrong magic', () => {
    const zip = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x08, 0x00, 1, 2, 3]);
    expect(decodeError(zip).message).toBe(
      `${FILE}: wrong magic: expected "RTCKPT\\r\\n", found "PK\\x03\\x04\\x14\\x00\\x08\\x00" (not a ringtrain checkpoint)`,
    );
    const json = new TextEncoder().encode('{"modelTopology": {}}');
    expect(decodeError(json).message).toBe(
      `${FILE}: wrong magic: expected "RTCKPT\\r\\n", found "{\\"modelT" (not a ringtrain checkpoint)`,
    );
    expect(decodeError(envelope(good.subarray(32), { magic: 'RTCKPT\n\n' })).problem).toBe('magic');
    expect(decodeError(Uint8Array.from([0x52, 0x54, 0x43])).message).toBe(
      `${FILE}: truncated: expected at least 32 bytes (the header), found 3`,
    );
  });

  it('unsupported format version', () => {
    const v2 = decodeError(envelope(good.subarray(32), { version: 2 }));
    expect(v2.problem).toBe('version');
    expect(v2.message).toBe(`${FILE}: unsupported format version: expected 1, found 2`);
    expect(v2.hint).toBe('it may have been written by a newer ringtrain');
    expect(decodeError(envelope(good.subarray(32), { version: 0 })).message).toBe(
      `${FILE}: unsupported format version: expected 1, found 0`,
    );
    expect(decodeError(envelope(good.subarray(32), { flags: 1 })).message).toBe(
      `${FILE}: unsupported header flags: expected 0x00000000, found 0x00000001`,
    );
  });

  it('a flipped byte anywhere is detected, with the message of its region', () => {
    const positions = new Set<number>();
    for (let i = 0; i < 32 + 64; i++) positions.add(i); // header and payload start
    for (const t of layout.tensors) {
      for (const p of [t.crcAt, t.crcAt + 3, t.start - 1, t.start, t.start + 1, (t.start + t.end) >> 1, t.end - 1]) positions.add(p);
    }
    for (const m of layout.metadata) for (let p = m.start; p < m.end; p += 7) positions.add(p);
    for (let k = 0; k < 200; k++) positions.add(32 + Math.floor((k / 200) * payloadLength)); // the middle, evenly
    for (let i = good.length - 16; i < good.length; i++) positions.add(i); // the end
    expect(positions.size).toBeGreaterThan(400);
    for (const position of positions) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = good.slice();
        bad[position]! ^= mask;
        const e = decodeError(bad);
        if (position < 8) {
          expect(e.message).toMatch(/: wrong magic: expected "RTCKPT\\r\\n", found ".*" \(not a ringtrain checkpoint\)$/);
        } else if (position < 12) {
          const version = new DataView(bad.buffer).getUint32(8, true);
          expect(e.message).toBe(`${FILE}: unsupported format version: expected 1, found ${version}`);
        } else if (position < 32) {
          const found = position >= 28 ? storedHeaderCrc : crc32c(bad.subarray(0, 28));
          const expected = position >= 28 ? new DataView(bad.buffer).getUint32(28, true) : storedHeaderCrc;
          expect(e.message).toBe(
            `${FILE}: header checksum mismatch: header CRC32C expected ${formatCrc(expected)}, found ${formatCrc(found)} (the header is damaged)`,
          );
        } else {
          expect(e.message).toBe(
            `${FILE}: checksum mismatch: payload CRC32C expected ${formatCrc(storedCrc)}, found ${formatCrc(crc32c(bad.subarray(32)))} (the file is damaged)`,
          );
        }
      }
    }
  });

  it('a tensor whose CRC32C does not match its data is named', () => {
    // Damage m's data but give the file a valid envelope: only the tensor CRC can catch it.
    const bytes = encodeCheckpoint(state);
    const m = layout.tensors.find((t) => t.name === 'm')!;
    const expected = crc32c(bytes.subarray(m.start, m.end));
    bytes[m.start + 100]! ^= 0x10;
    const found = crc32c(bytes.subarray(m.start, m.end));
    const e = decodeError(envelope(bytes.subarray(32)));
    expect(e.problem).toBe('tensor-checksum');
    expect(e.message).toBe(`${FILE}: optimizer state tensor 'm' checksum mismatch: CRC32C expected ${formatCrc(expected)}, found ${formatCrc(found)}`);

    const p = layout.tensors.find((t) => t.name === 'params')!;
    const again = encodeCheckpoint(state);
    new DataView(again.buffer).setUint32(p.crcAt, 0xdeadbeef, true);
    expect(decodeError(envelope(again.subarray(32))).message).toBe(
      `${FILE}: tensor 'params' checksum mismatch: CRC32C expected 0xdeadbeef, found ${formatCrc(crc32c(bytesOf(state.params)))}`,
    );
  });

  describe('payloads that pass the checksum but are not consistent', () => {
    const Checkpoint = protobuf.loadSync(CHECKPOINT_PROTO_FILE).lookupType('ringtrain.checkpoint.Checkpoint');
    const edited = (edit: (m: any) => void): Uint8Array => {
      const message = Checkpoint.decode(good.subarray(32)) as any;
      edit(message);
      return envelope(Checkpoint.encode(message).finish());
    };

    it('a tensor whose byte length does not match its shape', () => {
      const e = decodeError(edited((m) => (m.optimizer.state[1].data = m.optimizer.state[1].data.subarray(0, 400))));
      expect(e.problem).toBe('tensor-length');
      expect(e.message).toBe(
        `${FILE}: optimizer state tensor 'v' byte length mismatch: expected 50880 bytes (shape [12720] float32), found 400`,
      );
      expect(decodeError(edited((m) => (m.params.shape = [12721]))).message).toBe(
        `${FILE}: tensor 'params' byte length mismatch: expected 50884 bytes (shape [12721] float32), found 50880`,
      );
      expect(decodeError(edited((m) => (m.params.dtype = 'float16'))).message).toBe(
        `${FILE}: tensor 'params': unsupported dtype: expected "float32", found "float16"`,
      );
    });

    it('inconsistent fields', () => {
      expect(decodeError(edited((m) => (m.format = 'something'))).message).toBe(
        `${FILE}: malformed payload: format expected "ringtrain.checkpoint", found "something"`,
      );
      expect(decodeError(edited((m) => (m.layout[2].size = 10))).message).toBe(
        `${FILE}: malformed payload: layout[2] 'dense_Dense2/kernel': size 10 is not the product of shape [16, 10]`,
      );
      expect(decodeError(edited((m) => m.layout.pop())).message).toBe(
        `${FILE}: malformed payload: params has 12720 values, the layout ends at 12560`,
      );
      expect(decodeError(edited((m) => (m.configJson = '{"name": '))).message).toMatch(
        new RegExp(`^${FILE}: malformed payload: the config is not valid JSON \\(.+\\)$`),
      );
      expect(decodeError(edited((m) => (m.params = null))).message).toBe(`${FILE}: malformed payload: the parameter tensor is missing`);
      const garbage = decodeError(envelope(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2])));
      expect(garbage.problem).toBe('malformed');
      expect(garbage.message).toMatch(new RegExp(`^${FILE}: malformed payload: not a Checkpoint message \\(.+\\)$`));
    });
  });
});

describe('readCheckpointFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-format-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and verifies a file', async () => {
    const state = makeState();
    const file = path.join(dir, 'a.rtckpt');
    await writeFile(file, encodeCheckpoint(state));
    expectSameState(state, await readCheckpointFile(file));
  });

  it('reads a file of several read slices, and finds damage in any of them', async () => {
    const state = makeState({ units: 1300 }); // 12 MB: more than one 8 MiB read slice
    const bytes = encodeCheckpoint(state);
    expect(bytes.length).toBeGreaterThan(12_000_000);
    const file = path.join(dir, 'big.rtckpt');
    await writeFile(file, bytes);
    expectSameState(state, await readCheckpointFile(file));
    const stored = new DataView(bytes.buffer).getUint32(24, true);
    for (const position of [100, 9_000_000, bytes.length - 1]) {
      const bad = bytes.slice();
      bad[position]! ^= 0x04;
      await writeFile(file, bad);
      expect((await checkpointErrorOf(() => readCheckpointFile(file))).message).toBe(
        `${file}: checksum mismatch: payload CRC32C expected ${formatCrc(stored)}, found ${formatCrc(crc32c(bad.subarray(32)))} (the file is damaged)`,
      );
    }
    await writeFile(file, bytes.subarray(0, 10_000_000));
    expect((await checkpointErrorOf(() => readCheckpointFile(file))).message).toBe(
      `${file}: truncated: expected ${bytes.length} bytes (32-byte header + ${bytes.length - 32}-byte payload), found 10000000`,
    );
    await writeFile(file, bytes.subarray(0, 20));
    expect((await checkpointErrorOf(() => readCheckpointFile(file))).message).toBe(
      `${file}: truncated: expected at least 32 bytes (the header), found 20`,
    );
  });

  it('names a directory, a missing file and an empty file', async () => {
    const e = await checkpointErrorOf(() => readCheckpointFile(dir));
    expect(e.problem).toBe('directory');
    expect(e.message).toBe(`${dir}: is a directory, not a checkpoint file`);
    const missing = path.join(dir, 'nope.rtckpt');
    expect((await checkpointErrorOf(() => readCheckpointFile(missing))).message).toBe(`${missing}: no such checkpoint file`);
    const empty = path.join(dir, 'empty.rtckpt');
    await writeFile(empty, '');
    expect((await checkpointErrorOf(() => readCheckpointFile(empty))).message).toBe(
      `${empty}: empty file (0 bytes), not a ringtrain checkpoint`,
    );
  });
});
