import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEmbeddedMnist, type EmbeddedMnist } from '../../src/data/sources/embedded-mnist.js';
import { loadData } from '../../src/data/load-data.js';
import { tempDir } from './fixtures.js';

let root: string;
let cleanup: () => Promise<void>;
let fromJson: EmbeddedMnist;
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  fromJson = await readEmbeddedMnist();
});
afterAll(() => cleanup());

function classCounts(labels: ArrayLike<number>): number[] {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

describe('embedded-mnist', () => {
  it('has 10,000 images: 100 test images per digit, the rest train', () => {
    const { train, test } = fromJson;
    expect(train.count + test.count).toBe(10000);
    expect(test.count).toBe(1000);
    expect(train.pixels.length).toBe(train.count * 784);
    expect(test.pixels.length).toBe(test.count * 784);
    expect(classCounts(test.labels)).toEqual(new Array(10).fill(100));
    const trainCounts = classCounts(train.labels);
    for (const n of trainCounts) expect(n).toBeGreaterThan(700);
  });

  it('is ordered round-robin over the classes', () => {
    const { train, test } = fromJson;
    for (let i = 0; i < 1000; i++) expect(test.labels[i]).toBe(i % 10);
    // Every digit has at least 763 train images, so the first 7630 go 0,1,...,9,0,1,...
    for (let i = 0; i < 7630; i++) expect(train.labels[i]).toBe(i % 10);
    // Any prefix is balanced to within one image per class while all digits last.
    const prefix = classCounts(train.labels.subarray(0, 1234));
    expect(Math.max(...prefix) - Math.min(...prefix)).toBeLessThanOrEqual(1);
  });

  it('pixels are bytes 0..255 with real ink', () => {
    const { train } = fromJson;
    let max = 0;
    let nonzero = 0;
    for (const v of train.pixels) {
      if (v > max) max = v;
      if (v > 0) nonzero++;
    }
    expect(max).toBe(255);
    const inkFraction = nonzero / train.pixels.length;
    expect(inkFraction).toBeGreaterThan(0.1);
    expect(inkFraction).toBeLessThan(0.3);
  });

  it('the first image matches the package JSON (digit 0, image 0)', async () => {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url).resolve('mnist/package.json');
    const zero = JSON.parse(await readFile(join(pkg, '..', 'src', 'digits', '0.json'), 'utf8')) as { data: number[] };
    const first = Uint8Array.from(zero.data.slice(0, 784), (v) => Math.round(v * 255));
    expect(Buffer.from(fromJson.train.pixels.subarray(0, 784)).equals(Buffer.from(first))).toBe(true);
    const lastTestOfZero = Uint8Array.from(zero.data.slice(zero.data.length - 784), (v) => Math.round(v * 255));
    // The last test image of digit 0 is test image 99*10 + 0.
    expect(Buffer.from(fromJson.test.pixels.subarray(990 * 784, 991 * 784)).equals(Buffer.from(lastTestOfZero))).toBe(true);
  });

  it('the binary cache round-trips and a damaged cache is rebuilt', async () => {
    const cacheDir = join(root, 'embedded');
    const first = await readEmbeddedMnist({ cacheDir });
    const files = await readdir(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^mnist-.+\.bin$/);
    const cached = await readEmbeddedMnist({ cacheDir });
    for (const split of ['train', 'test'] as const) {
      expect(cached[split].count).toBe(fromJson[split].count);
      expect(Buffer.from(cached[split].pixels).equals(Buffer.from(first[split].pixels))).toBe(true);
      expect(Buffer.from(cached[split].labels).equals(Buffer.from(fromJson[split].labels))).toBe(true);
    }
    const file = join(cacheDir, files[0]!);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(file, bytes);
    const rebuilt = await readEmbeddedMnist({ cacheDir });
    expect(Buffer.from(rebuilt.test.pixels).equals(Buffer.from(fromJson.test.pixels))).toBe(true);
    expect((await readFile(file)).equals(bytes)).toBe(false);
  });

  it('loadData shares it with limits and class count', async () => {
    const data = await loadData({ source: 'embedded-mnist', cacheDir: join(root, 'cache'), trainLimit: 500, testLimit: 50 }, { seed: 3 });
    expect(data.classes).toBe(10);
    expect(data.train.name).toBe('embedded-mnist/train');
    expect(data.train.size).toBe(500);
    expect(data.test?.size).toBe(50);
    expect(data.train.featureShape).toEqual([28, 28, 1]);
    expect(data.train.labelShape).toEqual([]);
    expect(data.train.featureType).toBe('uint8');
    expect(data.train.featureScale).toBeCloseTo(1 / 255);
    expect(data.train.features).toBeInstanceOf(SharedArrayBuffer);
    expect(data.train.features.byteLength).toBe(500 * 784);
    expect(classCounts(new Float32Array(data.train.labels))).toEqual(new Array(10).fill(50));
    expect(await readdir(join(root, 'cache'))).toEqual(['embedded-mnist']);
  });
});
