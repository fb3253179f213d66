import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCheckpoint, readCheckpointFile } from '../../src/checkpoint/format.js';
import { peekCheckpoint } from '../../src/checkpoint/peek.js';
import { makeState } from './fixtures.js';

describe('peekCheckpoint', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringtrain-peek-'));

  it('reads position, time, replicas, version and the last history record as written', async () => {
    const state = makeState({ epoch: 7, globalStep: 4321 });
    const file = path.join(dir, 'a.rtckpt');
    writeFileSync(file, encodeCheckpoint(state));
    const peek = await peekCheckpoint(file);
    expect(peek.position).toEqual({ epoch: 7, stepInEpoch: 17, globalStep: 4321, samplesSeen: 4321 * 32 });
    expect(peek.createdAt).toBe('2025-01-02T03:04:05.678Z');
    expect(peek.replicas).toBe(2);
    expect(peek.ringtrainVersion).toBe('0.1.0');
    // NaN and the infinities come back as numbers (the history's JSON tags them).
    expect(peek.lastRecord).toEqual({ epoch: 1, loss: Number.NaN, metrics: { accuracy: 0.9 }, note: 'diverged', extra: [Number.POSITIVE_INFINITY, -1e308] });
  });

  it('does not read the tensors: a damaged parameter byte still peeks, while loading the file fails', async () => {
    const state = makeState();
    const bytes = encodeCheckpoint(state);
    // The parameters' first value lies after the metadata; its data is unique enough to find.
    const first = new Uint8Array(state.params.buffer, state.params.byteOffset, 16);
    const at = Buffer.from(bytes).indexOf(Buffer.from(first));
    expect(at).toBeGreaterThan(100);
    bytes[at] ^= 0xff;
    const file = path.join(dir, 'damaged.rtckpt');
    writeFileSync(file, bytes);
    expect((await peekCheckpoint(file)).position.globalStep).toBe(1234);
    await expect(readCheckpointFile(file)).rejects.toThrow(/checksum mismatch/);
  });

  it('says what is wrong with a file that is not a checkpoint, or is cut short', async () => {
    const text = path.join(dir, 'text.rtckpt');
    writeFileSync(text, 'x'.repeat(64));
    await expect(peekCheckpoint(text)).rejects.toThrow(`${text}: not a ringtrain checkpoint (no magic)`);
    const whole = encodeCheckpoint(makeState());
    const cut = path.join(dir, 'cut.rtckpt');
    writeFileSync(cut, whole.subarray(0, 200));
    await expect(peekCheckpoint(cut)).rejects.toThrow(new RegExp(`^${cut}: cut short: 200 bytes, its header says ${whole.length}$`));
    expect(readFileSync(cut).length).toBe(200);
  });
});
