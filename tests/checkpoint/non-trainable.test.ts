/** Non-trainable weights in the checkpoint file: round trip, absent in older files, damage and bad contents named. */
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/checkpoint/format.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { describeCheckpoint, formatCheckpoint } from '../../src/checkpoint/inspect.js';
import { checkCheckpointContents } from '../../src/checkpoint/validate.js';
import { bytesOf, checkpointErrorOf, makeState } from './fixtures.js';

const FILE = 'runs/x/ckpt.rtckpt';

function withBatchNorm(): CheckpointState {
  const nonTrainable = Float32Array.from([0.5, -1.25, 3, 1e-3, 1.5, 0.25, 2, 7.75]);
  return {
    ...makeState({ units: 3 }),
    nonTrainableLayout: [
      { name: 'batch_normalization_1/moving_mean', shape: [4], offset: 0, size: 4 },
      { name: 'batch_normalization_1/moving_variance', shape: [4], offset: 4, size: 4 },
    ],
    nonTrainable,
  };
}

describe('non-trainable weights in a checkpoint', () => {
  it('round-trip bit for bit with their layout; a state without them decodes without them', () => {
    const state = withBatchNorm();
    const back = decodeCheckpoint(encodeCheckpoint(state), FILE);
    expect(back.nonTrainableLayout).toEqual(state.nonTrainableLayout);
    expect(bytesOf(back.nonTrainable!)).toEqual(bytesOf(state.nonTrainable!));
    expect(bytesOf(back.params)).toEqual(bytesOf(state.params));

    const plain = decodeCheckpoint(encodeCheckpoint(makeState({ units: 3 })), FILE);
    expect(plain.nonTrainable).toBeUndefined();
    expect(plain.nonTrainableLayout).toBeUndefined();
  });

  it('an inconsistent state is refused when encoding', () => {
    const state = withBatchNorm();
    expect(() => encodeCheckpoint({ ...state, nonTrainable: state.nonTrainable!.subarray(1) })).toThrow('encodeCheckpoint: nonTrainable has 7 values, nonTrainableLayout ends at 8');
    expect(() => encodeCheckpoint({ ...state, nonTrainable: undefined })).toThrow('encodeCheckpoint: nonTrainableLayout and nonTrainable (a Float32Array) go together');
  });

  it('a damaged byte in their values is found by the checksum', async () => {
    const bytes = encodeCheckpoint(withBatchNorm());
    const at = Buffer.from(bytes).indexOf(Buffer.from(bytesOf(withBatchNorm().nonTrainable!)));
    expect(at).toBeGreaterThan(32);
    bytes[at + 5]! ^= 0x10;
    const error = await checkpointErrorOf(() => decodeCheckpoint(bytes, FILE));
    expect(error.problem).toBe('checksum');
    expect(error.message).toContain('checksum mismatch: payload CRC32C');
  });

  it('a non-trainable weight named as another weight is refused, naming the field', async () => {
    const state = withBatchNorm();
    state.nonTrainableLayout![1]!.name = state.layout[0]!.name;
    const error = await checkpointErrorOf(() => checkCheckpointContents(state, FILE));
    expect(error.message).toBe(`${FILE}: invalid contents: nonTrainableLayout[1].name: expected a name not used by another weight, found "${state.layout[0]!.name}"`);
  });

  it('inspect lists them and their tensor', () => {
    const text = formatCheckpoint(describeCheckpoint(withBatchNorm(), FILE));
    expect(text).toContain('\nnon-trainable 8 in 2 weights\n');
    expect(text).toMatch(/\n {2}batch_normalization_1\/moving_variance {2}\[4\] {2}offset 4 {2}size 4\n/);
    expect(text).toMatch(/\n {2}non_trainable +non-trainable +\[8\] +float32 +32 B +crc32c /);
    expect(formatCheckpoint(describeCheckpoint(makeState({ units: 3 }), FILE))).not.toContain('non-trainable');
  });
});
