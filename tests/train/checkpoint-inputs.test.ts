/** Inputs to predict on, read for a checkpoint's model: JSON arrays, plain CSV rows, images resized to its input. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { predictionInputs } from '../../src/train/checkpoint-model.js';
import { dataErrorOf } from '../helpers/data-error.js';
import { makeState } from '../checkpoint/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-inputs-'));
// An mnist model: Flatten on [28, 28, 1] (the fixture's topology), data source mnist.
const ckpt = { ...makeState(), file: 'model.rtckpt' };

describe('predictionInputs for an mnist checkpoint', () => {
  it('reads a JSON array of samples, nested or flat, and names a sample of the wrong size', async () => {
    const file = join(dir, 'samples.json');
    const image = Array.from({ length: 28 }, (_, r) => Array.from({ length: 28 }, (_, c) => [(r * 28 + c) / 784]));
    writeFileSync(file, JSON.stringify([image, image.flat(2)]));
    const read = await predictionInputs(ckpt, file);
    expect(read.names).toEqual(['0', '1']);
    expect(read.features.length).toBe(2 * 784);
    expect(read.features[783]).toBeCloseTo(783 / 784, 6);
    expect(read.features[784 + 783]).toBeCloseTo(783 / 784, 6);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([image.flat(2), [1, 2, 3]]));
    expect((await dataErrorOf(predictionInputs(ckpt, bad))).message).toBe(`${bad}: sample 1: expected 784 numbers, found [1,2,3]`);
  });

  it('reads CSV rows of numbers without a header', async () => {
    const file = join(dir, 'rows.csv');
    writeFileSync(file, `${Array.from({ length: 784 }, (_, i) => i).join(',')}\n`);
    const read = await predictionInputs(ckpt, file);
    expect(read.features.length).toBe(784);
    expect(read.features[100]).toBe(100);
  });

  it('reads a folder of images, recursively, as grayscale resized to 28x28 and scaled to [0, 1]', async () => {
    const images = join(dir, 'images', 'digits');
    mkdirSync(images, { recursive: true });
    const png = new PNG({ width: 56, height: 56 });
    for (let i = 0; i < 56 * 56; i++) png.data.set([255, 255, 255, 255], i * 4);
    writeFileSync(join(images, 'white.png'), PNG.sync.write(png));
    const read = await predictionInputs(ckpt, join(dir, 'images'));
    expect(read.names).toEqual([join('digits', 'white.png')]);
    expect(read.features.length).toBe(784);
    expect(read.features.every((v) => v === 1)).toBe(true);
  });
});
