import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetReader } from '../../src/data/dataset.js';
import { loadData } from '../../src/data/load-data.js';
import { resizeBilinear } from '../../src/data/sources/decode-image.js';
import { imageFolderSource } from '../../src/data/sources/image-folder.js';
import { dataErrorOf } from '../helpers/data-error.js';
import { tempDir } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => cleanup());

/** A PNG of `width` x `height` where pixel (x, y) is rgb(f(x, y)). */
function png(width: number, height: number, f: (x: number, y: number) => [number, number, number]): Buffer {
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = f(x, y);
      image.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return PNG.sync.write(image);
}

function solidJpeg(width: number, height: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb, 255], i * 4);
  return jpeg.encode({ width, height, data }, 95).data;
}

async function put(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, bytes);
}

describe('bilinear resize', () => {
  it('matches tf.image.resizeBilinear with half-pixel centers (TensorFlow 2) on the cpu backend', async () => {
    await tf.setBackend('cpu');
    const [h, w, c] = [5, 7, 3];
    const src = Float32Array.from({ length: h * w * c }, (_, i) => (i * 37) % 255);
    for (const [oh, ow] of [[3, 4], [8, 11], [5, 7], [1, 1]] as const) {
      const ours = resizeBilinear(src, h, w, c, oh, ow);
      const theirs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(src, [h, w, c]), [oh, ow], false, true).dataSync());
      expect(ours.length).toBe(theirs.length);
      ours.forEach((v, i) => expect(v).toBeCloseTo(theirs[i]!, 3));
    }
  });
});

describe('image-folder data source', () => {
  it('reads one subfolder per class, PNG and JPEG, resized, with the class names in sorted order', async () => {
    const root = join(dir, 'pets');
    // cats are red, dogs blue; sizes differ and are resized to 4x4.
    await put(join(root, 'dog', 'd1.png'), png(8, 6, () => [0, 0, 200]));
    await put(join(root, 'dog', 'd2.JPG'), solidJpeg(16, 16, [0, 0, 200]));
    await put(join(root, 'cat', 'c1.png'), png(4, 4, () => [200, 0, 0]));
    await put(join(root, 'cat', 'c2.png'), png(2, 2, () => [200, 0, 0]));
    await put(join(root, 'cat', 'readme.txt'), 'skipped, as Keras skips it');
    const data = await loadData({ source: 'image-folder', dir: root, imageSize: [4, 4] }, { seed: 3 });
    expect(data.info).toEqual({ classNames: ['cat', 'dog'], imageSize: [4, 4], channels: 3 });
    expect(data.classes).toBe(2);
    expect(data.train.size).toBe(4);
    expect(data.train.featureShape).toEqual([4, 4, 3]);
    const reader = new DatasetReader(data.train);
    const x = new Float32Array(4 * 48);
    const y = new Float32Array(4);
    reader.gatherRange(0, 4, x, y);
    expect([...y].sort()).toEqual([0, 0, 1, 1]);
    for (let i = 0; i < 4; i++) {
      const pixel = [...x.subarray(i * 48, i * 48 + 3)];
      // Scaled to [0, 1]; the JPEG is lossy, within a few levels.
      const expected = y[i] === 0 ? [200, 0, 0] : [0, 0, 200];
      pixel.forEach((v, k) => expect(Math.abs(v * 255 - expected[k]!)).toBeLessThanOrEqual(4));
    }
  });

  it('converts to grayscale with channels 1 and keeps a gradient through the resize', async () => {
    const root = join(dir, 'gray');
    await put(join(root, 'a', 'g.png'), png(4, 1, (x) => [x * 60, x * 60, x * 60]));
    const data = await loadData({ source: 'image-folder', dir: root, imageSize: [1, 2], channels: 1 }, { seed: 1 });
    expect(data.train.featureShape).toEqual([1, 2, 1]);
    // Half-pixel centers: output pixel 0 samples x = 0.5 (30), pixel 1 samples x = 2.5 (150).
    expect([...new Uint8Array(data.train.features)]).toEqual([30, 150]);
  });

  it('names the file that is not an image or is damaged, and the folder without classes', async () => {
    const root = join(dir, 'bad');
    await put(join(root, 'a', 'fake.png'), 'GIF89a not a png');
    let error = await dataErrorOf(loadData({ source: 'image-folder', dir: root, imageSize: [2, 2] }, { seed: 1 }));
    expect(error.message).toBe(`${join(root, 'a', 'fake.png')}: expected a PNG or JPEG image, found a file starting with 47 49 46 38`);

    const broken = join(dir, 'broken');
    await put(join(broken, 'a', 'cut.png'), png(4, 4, () => [1, 2, 3]).subarray(0, 40));
    error = await dataErrorOf(loadData({ source: 'image-folder', dir: broken, imageSize: [2, 2] }, { seed: 1 }));
    expect(error.message).toMatch(new RegExp(`^${join(broken, 'a', 'cut.png').replace(/[.]/g, '\\.')}: expected a valid PNG image, found a damaged one \\(.+\\)$`));

    const flat = join(dir, 'flat');
    await put(join(flat, 'x.png'), png(2, 2, () => [0, 0, 0]));
    error = await dataErrorOf(loadData({ source: 'image-folder', dir: flat }, { seed: 1 }));
    expect(error.message).toBe(`data.dir: ${flat}: expected one subfolder per class, found no subfolder`);
  });

  it('reads a test folder by the training class names, and images to predict recursively', async () => {
    const root = join(dir, 'split');
    await put(join(root, 'train', 'a', '1.png'), png(2, 2, () => [10, 10, 10]));
    await put(join(root, 'train', 'b', '1.png'), png(2, 2, () => [20, 20, 20]));
    await put(join(root, 'test', 'b', '1.png'), png(2, 2, () => [30, 30, 30]));
    const config = { source: 'image-folder' as const, dir: join(root, 'train'), testDir: join(root, 'test'), imageSize: [2, 2] as [number, number], channels: 1 as const };
    const data = await loadData(config, { seed: 1 });
    expect(data.test!.size).toBe(1);
    expect([...new Float32Array(data.test!.labels)]).toEqual([1]);
    await put(join(root, 'other', 'c', '1.png'), png(2, 2, () => [0, 0, 0]));
    const error = await dataErrorOf(imageFolderSource.readLabelled(join(root, 'other'), config, data.info!));
    expect(error.message).toBe(`data ${join(root, 'other', 'c')}: expected a subfolder named after a training class (a, b), found "c"`);
    const inputs = await imageFolderSource.readInputs(join(root, 'test'), config, data.info!);
    expect(inputs.names).toEqual([join('b', '1.png')]);
    expect([...inputs.features].map((v) => Math.round(v * 255))).toEqual([30, 30, 30, 30]);
  });
});
