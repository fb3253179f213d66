import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  convertCifarBatches,
  findCifarFiles,
  readCifar,
  readCifarArchive,
  readCifarBatchFile,
} from '../../src/data/sources/cifar.js';
import { loadData } from '../../src/data/load-data.js';
import { CIFAR_BATCHES, cifarBatch, cifarPixel, cifarTarGz, gzip, tempDir } from './fixtures.js';
import { dataErrorOf } from '../helpers/data-error.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

/** Pixel (y, x, c) of image i of an HWC [32, 32, 3] array. */
function hwc(pixels: Uint8Array, i: number, y: number, x: number, c: number): number {
  return pixels[i * 3072 + (y * 32 + x) * 3 + c]!;
}

/** Batches of 3 records each (test: 2), with distinct pixels and labels per batch. */
function smallBatches(): Record<string, Buffer> {
  return Object.fromEntries(CIFAR_BATCHES.map((b, k) => [b, cifarBatch(b === 'test_batch' ? 2 : 3, k, k * 100)]));
}

describe('CIFAR-10 binary', () => {
  it('converts planar RGB records to HWC', () => {
    const bytes = cifarBatch(4, 2);
    const { count, pixels, labels } = convertCifarBatches([{ file: 'b.bin', bytes }]);
    expect(count).toBe(4);
    expect([...labels]).toEqual([2, 3, 4, 5]);
    for (const [i, y, x, c] of [
      [0, 0, 0, 0],
      [1, 5, 7, 1],
      [3, 31, 31, 2],
      [2, 17, 3, 2],
    ] as const) {
      expect(hwc(pixels, i, y, x, c)).toBe(cifarPixel(i, y, x, c));
    }
    // A hand-made record: red at (0, 1) is the 2nd byte of the red plane, green at (1, 0) the 33rd of the green one.
    const one = new Uint8Array(3073);
    one[0] = 9;
    one[1 + 1] = 200;
    one[1 + 1024 + 32] = 100;
    one[1 + 2048 + 1023] = 50;
    const single = convertCifarBatches([{ file: 'one.bin', bytes: one }]);
    expect(hwc(single.pixels, 0, 0, 1, 0)).toBe(200);
    expect(hwc(single.pixels, 0, 1, 0, 1)).toBe(100);
    expect(hwc(single.pixels, 0, 31, 31, 2)).toBe(50);
    expect(single.pixels.reduce((a, b) => a + b, 0)).toBe(350);
  });

  it('reads .bin and .bin.gz files', async () => {
    const raw = join(dir, 'data_batch_1.bin');
    const gz = join(dir, 'data_batch_2.bin.gz');
    await writeFile(raw, cifarBatch(3));
    await writeFile(gz, gzip(cifarBatch(3)));
    const a = await readCifarBatchFile(raw);
    const b = await readCifarBatchFile(gz);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(a.bytes.length).toBe(3 * 3073);
  });

  it('a size that is not a multiple of 3073 names the file, the size and the record size', async () => {
    const file = join(dir, 'bad-size.bin');
    await writeFile(file, cifarBatch(2).subarray(0, 3073 * 2 - 5));
    const { message } = await dataErrorOf(readCifarBatchFile(file).then((b) => convertCifarBatches([b])));
    expect(message).toContain(`${file}: size 6141 bytes is not a multiple of the CIFAR-10 record size 3073`);
    expect(message).toContain('1 whole records and 3068 bytes left over');
  });

  it('a label out of 0..9 names the record', () => {
    const bytes = cifarBatch(5);
    bytes[3 * 3073] = 10;
    expect(() => convertCifarBatches([{ file: 'x.bin', bytes }])).toThrow('x.bin: record 3 has label 10, expected 0..9');
    expect(() => convertCifarBatches([{ file: 'e.bin', bytes: new Uint8Array(0) }])).toThrow('e.bin: empty file');
  });

  it('reads a folder of batches (mixed .bin/.bin.gz) in order', async () => {
    const { dir: folder, cleanup: done } = await tempDir();
    try {
      const batches = smallBatches();
      for (const [k, b] of CIFAR_BATCHES.entries()) {
        const bytes = batches[b]!;
        await writeFile(join(folder, k % 2 ? `${b}.bin.gz` : `${b}.bin`), k % 2 ? gzip(bytes) : bytes);
      }
      const files = await findCifarFiles(folder);
      expect(files.kind).toBe('batches');
      const { train, test } = await readCifar(files);
      expect(train.count).toBe(15);
      expect(test.count).toBe(2);
      // Record 0 of data_batch_2 (k = 1) is train image 3: label 1, pixels offset 100.
      expect(train.labels[3]).toBe(1);
      expect(hwc(train.pixels, 3, 4, 9, 1)).toBe(cifarPixel(100, 4, 9, 1));
      expect(test.labels[1]).toBe(6);
      expect(hwc(test.pixels, 1, 30, 2, 0)).toBe(cifarPixel(501, 30, 2, 0));
    } finally {
      await done();
    }
  });

  it('reads the official archive layout with tar-stream through gunzip', async () => {
    const batches = smallBatches();
    const archive = join(dir, 'cifar-10-binary.tar.gz');
    await writeFile(archive, await cifarTarGz(batches, { 'cifar-10-batches-bin/readme.html': Buffer.from('<html>') }));
    const read = await readCifarArchive(archive);
    expect([...read.keys()].sort()).toEqual([...CIFAR_BATCHES].sort());
    expect(Buffer.from(read.get('data_batch_3')!.bytes).equals(batches['data_batch_3']!)).toBe(true);

    const { train, test } = await readCifar({ kind: 'archive', file: archive });
    expect(train.count).toBe(15);
    expect(test.count).toBe(2);
    expect(hwc(train.pixels, 14, 31, 0, 2)).toBe(cifarPixel(402, 31, 0, 2));
    expect(test.labels[0]).toBe(5);
  });

  it('an archive without some batches says which', async () => {
    const batches = smallBatches();
    delete batches['test_batch'];
    const archive = join(dir, 'partial.tar.gz');
    await writeFile(archive, await cifarTarGz(batches));
    const { message } = await dataErrorOf(readCifarArchive(archive));
    expect(message).toContain(`${archive}: the archive has no cifar-10-batches-bin/test_batch.bin`);
  });

  it('a damaged archive is a DataError', async () => {
    const bytes = await cifarTarGz(smallBatches());
    const archive = join(dir, 'damaged.tar.gz');
    await writeFile(archive, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const { message } = await dataErrorOf(readCifarArchive(archive));
    expect(message).toContain(`${archive}: cannot read the CIFAR-10 archive`);
  });

  it('a folder with neither batches nor the archive lists what is missing', async () => {
    const { dir: folder, cleanup: done } = await tempDir();
    try {
      await mkdir(join(folder, 'cifar-10-batches-bin'));
      await writeFile(join(folder, 'cifar-10-batches-bin', 'data_batch_1.bin'), cifarBatch(1));
      const { message } = await dataErrorOf(findCifarFiles(folder));
      expect(message).toContain('cifar10: missing files data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin');
      expect(message).toContain(folder);
      expect(message).toContain('cifar-10-binary.tar.gz');
    } finally {
      await done();
    }
  });

  it('loadData reads the archive from --data-dir and applies limits', async () => {
    const { dir: folder, cleanup: done } = await tempDir();
    try {
      await writeFile(join(folder, 'cifar-10-binary.tar.gz'), await cifarTarGz(smallBatches()));
      const data = await loadData({ source: 'cifar10', dir: '/nonexistent', trainLimit: 4, download: false }, { seed: 1, dataDir: folder });
      expect(data.classes).toBe(10);
      expect(data.train.size).toBe(4);
      expect(data.train.featureShape).toEqual([32, 32, 3]);
      expect(data.train.featureType).toBe('uint8');
      expect(data.train.featureScale).toBeCloseTo(1 / 255);
      expect(data.test?.size).toBe(2);
      expect(hwc(new Uint8Array(data.train.features), 3, 2, 2, 2)).toBe(cifarPixel(100, 2, 2, 2));
      expect([...new Float32Array(data.train.labels)]).toEqual([0, 1, 2, 1]);
    } finally {
      await done();
    }
  });
});
