/**
 * Callback states in checkpoints (field 30): a state with non-finite numbers and a tensor of
 * its own length round-trips exactly, a damaged callback tensor is named, duplicate names are
 * refused on read, and a file without them (as every file before callbacks) reads as before.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32c, formatCrc } from '../../src/checkpoint/crc32c.js';
import { decodeCheckpoint, encodeCheckpoint, planCheckpoint, readCheckpointFile } from '../../src/checkpoint/format.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { checkpointErrorOf, makeState } from './fixtures.js';

const FILE = 'runs/x/ckpt-e0002-s000012.rtckpt';

function withCallbacks(): CheckpointState {
  const state = makeState();
  return {
    ...state,
    callbacks: [
      { name: 'earlyStopping', state: { monitor: 'val_loss', best: Infinity, wait: 2, nested: { worst: -Infinity, none: NaN } }, tensors: [{ name: 'bestWeights', shape: [state.params.length], values: state.params.map((v) => v * 2) }] },
      { name: 'mine', state: { count: 3 }, tensors: [{ name: 'a', shape: [2, 2], values: new Float32Array([1, -0, 3, 4]) }, { name: 'b', shape: [0], values: new Float32Array(0) }] },
    ],
  };
}

describe('callback states in a checkpoint', () => {
  it('round-trip exactly, non-finite numbers and tensors of any length included', () => {
    const state = withCallbacks();
    const back = decodeCheckpoint(encodeCheckpoint(state), FILE);
    expect(back.callbacks).toHaveLength(2);
    const [es, mine] = back.callbacks!;
    expect(es!.name).toBe('earlyStopping');
    expect(es!.state.best).toBe(Infinity);
    expect((es!.state.nested as { worst: number; none: number }).worst).toBe(-Infinity);
    expect((es!.state.nested as { worst: number; none: number }).none).toBeNaN();
    expect(Buffer.from(es!.tensors[0]!.values.buffer).equals(Buffer.from(state.callbacks![0]!.tensors[0]!.values.buffer))).toBe(true);
    expect(mine).toMatchObject({ name: 'mine', state: { count: 3 } });
    expect(mine!.tensors.map((t) => [t.name, t.shape])).toEqual([['a', [2, 2]], ['b', [0]]]);
    expect(Object.is(mine!.tensors[0]!.values[1], -0)).toBe(true);
    // The rest of the state is untouched by them.
    expect(back.params).toEqual(state.params);
    expect(back.optimizer.state.map((t) => t.name)).toEqual(state.optimizer.state.map((t) => t.name));
  });

  it('a file without callback states reads without any (as files written before them)', () => {
    expect(decodeCheckpoint(encodeCheckpoint(makeState()), FILE).callbacks).toBeUndefined();
  });

  it('a damaged callback tensor is named', () => {
    const state = withCallbacks();
    const plan = planCheckpoint(state);
    const slot = plan.tensors.findIndex((t) => t.name === 'bestWeights');
    const { start, end } = plan.tensors[slot]!;
    const bytes = encodeCheckpoint(state);
    const expected = crc32c(bytes.subarray(start, end));
    bytes[start + 1]! ^= 0x40;
    const found = crc32c(bytes.subarray(start, end));
    // Reseal the payload CRC so that only the tensor's own CRC can catch it.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setUint32(24, crc32c(bytes.subarray(32)), true);
    view.setUint32(28, crc32c(bytes.subarray(0, 28)), true);
    expect(() => decodeCheckpoint(bytes, FILE)).toThrow(`${FILE}: callback state 'earlyStopping' tensor 'bestWeights' checksum mismatch: CRC32C expected ${formatCrc(expected)}, found ${formatCrc(found)}`);
  });

  it('two states of one name are refused when the file is read', async () => {
    const state = withCallbacks();
    state.callbacks![1]!.name = 'earlyStopping';
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'ringtrain-cbstate-')), 'ckpt-e0002-s000012.rtckpt');
    await writeFile(file, encodeCheckpoint(state));
    const error = await checkpointErrorOf(() => readCheckpointFile(file));
    expect(error.message).toBe(`${file}: invalid contents: callbacks[1].name: expected a name not used by another callback state, found "earlyStopping"`);
  });
});
