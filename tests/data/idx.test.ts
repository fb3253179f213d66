import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/errors.js';
import { findMnistFiles, parseIdxImages, readIdxImages, readIdxLabels, readIdxPair, readMnistFiles } from '../../src/data/sources/idx.js';
import { gzip, idxImages, idxLabels, labelsFor, pixel, tempDir } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

async function put(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  return file;
}

async function expectDataError(promise: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataError);
  const message = (error as DataError).message;
  for (const part of parts) {
    if (typeof part === 'string') expect(message).toContain(part);
    else expect(message).toMatch(part);
  }
  return message;
}

describe('IDX reader', () => {
  it('reads raw and gzip images and labels back byte for byte', async () => {
    const images = idxImages(5);
    const labels = idxLabels([3, 1, 4, 1, 5]);
    for (const [suffix, encode] of [
      ['', (b: Buffer) => b],
      ['.gz', gzip],
    ] as const) {
      const imagesFile = await put(`ok-images${suffix}`, encode(images));
      const labelsFile = await put(`ok-labels${suffix}`, encode(labels));
      const pair = await readIdxPair(imagesFile, labelsFile, { rows: 28, cols: 28 });
      expect(pair.images.count).toBe(5);
      expect(pair.images.rows).toBe(28);
      expect(pair.images.cols).toBe(28);
      expect(Buffer.from(pair.images.pixels).equals(images.subarray(16))).toBe(true);
      expect(pair.images.pixels[2 * 784 + 100]).toBe(pixel(2, 100));
      expect([...pair.labels]).toEqual([3, 1, 4, 1, 5]);
    }
  });

  it('detects gzip by its magic bytes, not the name', async () => {
    const disguised = await put('images-no-gz-suffix', gzip(idxImages(2)));
    expect((await readIdxImages(disguised)).count).toBe(2);
    const plainWithGzName = await put('labels-plain.gz', idxLabels([7, 8]));
    expect([...(await readIdxLabels(plainWithGzName))]).toEqual([7, 8]);
  });

  it('bad magic number names the file, expected and found', async () => {
    const file = await put('train-images-idx3-ubyte.gz', gzip(idxImages(2, 28, 28, { magic: 0x00000901 })));
    await expectDataError(readIdxImages(file), file, 'bad magic number 0x00000901, expected 0x00000803 (IDX images)');
    const labels = await put('labels-as-images', idxImages(2));
    await expectDataError(readIdxLabels(labels), 'labels-as-images: bad magic number 0x00000803, expected 0x00000801 (IDX labels)');
    const wrongType = await put('float-images', idxImages(2, 28, 28, { magic: 0x00000d03 }));
    await expectDataError(readIdxImages(wrongType), 'float-images: bad magic number 0x00000d03, expected 0x00000803');
  });

  it('truncated file: header count vs bytes found', async () => {
    const file = await put('train-images-idx3-ubyte', idxImages(60000, 28, 28, { pixelBytes: 1000 - 16 }));
    await expectDataError(
      readIdxImages(file),
      `${file}: truncated: header says 60000 images of 28x28 (47040016 bytes) but the file has 1000 bytes`,
    );
    const gz = await put('trunc.gz', gzip(idxImages(3, 28, 28, { pixelBytes: 100 })));
    await expectDataError(readIdxImages(gz), 'trunc.gz: truncated: header says 3 images of 28x28 (2368 bytes) but the file has 116 bytes after gunzip');
    const labels = await put('trunc-labels', idxLabels([1, 2, 3]).subarray(0, 9));
    await expectDataError(readIdxLabels(labels), 'trunc-labels: truncated: header says 3 labels (11 bytes) but the file has 9 bytes');
    const header = await put('short-header', idxImages(1).subarray(0, 10));
    await expectDataError(readIdxImages(header), 'short-header: truncated: an IDX images header has 16 bytes but the file has 10 bytes');
  });

  it('trailing bytes are an error too', async () => {
    const file = await put('long-images', Buffer.concat([idxImages(2), Buffer.alloc(5)]));
    await expectDataError(readIdxImages(file), 'long-images: wrong size: header says 2 images of 28x28 (1584 bytes) but the file has 1589 bytes');
  });

  it('image and label counts must agree', async () => {
    const images = await put('count-images', idxImages(4));
    const labels = await put('count-labels', idxLabels([1, 2, 3]));
    await expectDataError(readIdxPair(images, labels), 'count-labels: 3 labels but count-images has 4 images');
  });

  it('labels must be within 0..9', async () => {
    const labels = await put('range-labels', idxLabels([1, 2, 12, 3]));
    await expectDataError(readIdxLabels(labels), 'range-labels: label 12 at index 2 is out of range, expected 0..9');
  });

  it('empty file', async () => {
    const images = await put('empty-images', new Uint8Array(0));
    await expectDataError(readIdxImages(images), 'empty-images: empty file, expected IDX images (magic 0x00000803, 16-byte header)');
    const labels = await put('empty-labels.gz', gzip(new Uint8Array(0)));
    await expectDataError(readIdxLabels(labels), 'empty-labels.gz: empty file, expected IDX labels');
  });

  it('dimensions are checked', async () => {
    const file = await put('big-images', idxImages(1, 32, 32));
    await expectDataError(readIdxImages(file, { rows: 28, cols: 28 }), 'big-images: images are 32x32, expected 28x28');
    expect(() => parseIdxImages(idxImages(0, 0, 28), 'zero')).toThrow('zero: bad dimensions 0x28');
  });

  it('a corrupt gzip stream', async () => {
    const bytes = gzip(idxImages(2));
    const file = await put('corrupt.gz', bytes.subarray(0, bytes.length - 20));
    await expectDataError(readIdxImages(file), 'corrupt.gz: starts with the gzip magic bytes but is not a valid gzip file');
  });
});

describe('MNIST folder', () => {
  it('finds the four files with or without .gz and reads both splits', async () => {
    const { dir: folder, cleanup: done } = await tempDir();
    try {
      await writeFile(join(folder, 'train-images-idx3-ubyte.gz'), gzip(idxImages(20)));
      await writeFile(join(folder, 'train-labels-idx1-ubyte'), idxLabels(labelsFor(20)));
      await writeFile(join(folder, 't10k-images-idx3-ubyte'), idxImages(10));
      await writeFile(join(folder, 't10k-labels-idx1-ubyte.gz'), gzip(idxLabels(labelsFor(10, 3))));
      const { train, test } = await readMnistFiles(await findMnistFiles(folder, 'mnist'));
      expect(train.images.count).toBe(20);
      expect(test.images.count).toBe(10);
      expect([...test.labels.subarray(0, 3)]).toEqual([3, 4, 5]);
    } finally {
      await done();
    }
  });

  it('lists missing files and the folder it looked in', async () => {
    const { dir: folder, cleanup: done } = await tempDir();
    try {
      await writeFile(join(folder, 'train-images-idx3-ubyte.gz'), gzip(idxImages(2)));
      await writeFile(join(folder, 'train-labels-idx1-ubyte.gz'), gzip(idxLabels([1, 2])));
      await expectDataError(
        findMnistFiles(folder, 'fashion-mnist'),
        'fashion-mnist: missing files t10k-images-idx3-ubyte.gz (or t10k-images-idx3-ubyte), t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte)',
        `in ${folder}`,
      );
    } finally {
      await done();
    }
  });
});
