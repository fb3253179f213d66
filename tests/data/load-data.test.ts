import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DatasetReader, createSharedDataset, splitValidation } from '../../src/data/dataset.js';
import { loadData } from '../../src/data/load-data.js';
import { gzip, idxImages, idxLabels, labelsFor, pixel, tempDir } from './fixtures.js';
import { dataErrorOf } from '../helpers/data-error.js';

let mnistDir: string;
let emptyDir: string;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  const a = await tempDir();
  const b = await tempDir();
  cleanups.push(a.cleanup, b.cleanup);
  mnistDir = a.dir;
  emptyDir = b.dir;
  await writeFile(join(mnistDir, 'train-images-idx3-ubyte.gz'), gzip(idxImages(12)));
  await writeFile(join(mnistDir, 'train-labels-idx1-ubyte.gz'), gzip(idxLabels(labelsFor(12))));
  await writeFile(join(mnistDir, 't10k-images-idx3-ubyte'), idxImages(6));
  await writeFile(join(mnistDir, 't10k-labels-idx1-ubyte'), idxLabels(labelsFor(6, 4)));
});
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

describe('loadData from a local folder', () => {
  it('config.dir, without touching the network or the cache', async () => {
    const lines: string[] = [];
    const data = await loadData(
      { source: 'fashion-mnist', dir: mnistDir, cacheDir: join(emptyDir, 'unused'), mirror: 'http://127.0.0.1:9/' },
      { seed: 1, log: (l) => lines.push(l) },
    );
    expect(data.train.name).toBe('fashion-mnist/train');
    expect(data.train.size).toBe(12);
    expect(data.test!.size).toBe(6);
    expect(lines).toContain(`fashion-mnist: reading ${mnistDir}`);
    // Gathered through the shared reader: pixels scaled by 1/255, class-id labels.
    const reader = new DatasetReader(data.test!);
    const x = new Float32Array(784);
    const y = new Float32Array(1);
    reader.gather([2], 0, 1, x, y);
    expect(y[0]).toBe(6);
    expect(x[300]).toBeCloseTo(pixel(2, 300) / 255, 6);
  });

  it('options.dataDir (--data-dir) overrides config.dir', async () => {
    const data = await loadData({ source: 'mnist', dir: emptyDir }, { seed: 1, dataDir: mnistDir });
    expect(data.train.size).toBe(12);
  });

  it('missing files in the folder are listed with the folder', async () => {
    const { message } = await dataErrorOf(loadData({ source: 'mnist' }, { seed: 1, dataDir: emptyDir }));
    expect(message).toContain('mnist: missing files train-images-idx3-ubyte.gz (or train-images-idx3-ubyte)');
    expect(message).toContain('t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte)');
    expect(message).toContain(`in ${emptyDir}`);
  });

  it('a folder that does not exist, or is a file, is said so', async () => {
    const missing = join(emptyDir, 'nope');
    const notFound = await dataErrorOf(loadData({ source: 'mnist' }, { seed: 1, dataDir: missing }));
    expect(notFound.message).toBe(`mnist: data folder ${missing} does not exist`);
    expect(notFound.hint).toBe('mnist needs train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzip or raw');
    const file = join(mnistDir, 't10k-images-idx3-ubyte');
    const notDir = await dataErrorOf(loadData({ source: 'cifar10', dir: file }, { seed: 1 }));
    expect(notDir.message).toBe(`cifar10: ${file} is a file, expected a data folder`);
  });

  it('a limit above the size uses all samples and says so', async () => {
    const lines: string[] = [];
    const data = await loadData({ source: 'mnist', trainLimit: 100, testLimit: 2 }, { seed: 1, dataDir: mnistDir, log: (l) => lines.push(l) });
    expect(data.train.size).toBe(12);
    expect(data.test!.size).toBe(2);
    expect(lines.some((l) => l.includes('mnist/train: data.trainLimit 100 is more than its 12 samples'))).toBe(true);
  });

  it('download: false with an empty cache asks for --data-dir', async () => {
    const { message } = await dataErrorOf(loadData({ source: 'cifar10', download: false, cacheDir: join(emptyDir, 'cache') }, { seed: 1 }));
    expect(message).toContain('cifar-10-binary.tar.gz is not in the cache folder');
    expect(message).toContain(join(emptyDir, 'cache', 'cifar10'));
    expect(message).toContain('put the files in a folder and pass --data-dir DIR (cifar10 needs data_batch_1..5 and test_batch as .bin or .bin.gz, or cifar-10-binary.tar.gz)');
  });
});

describe('splitValidation', () => {
  const dataset = (n: number) => createSharedDataset({ name: 'mine', featureShape: [1], labelShape: [], features: new Float32Array(n), labels: new Array<number>(n).fill(0) });

  it('takes the last fraction, as Keras does', () => {
    const { train, validation } = splitValidation(dataset(10), 0.2);
    expect([train.start, train.size, validation.start, validation.size]).toEqual([0, 8, 8, 2]);
  });

  it('refuses a fraction that leaves no validation sample', () => {
    expect(() => splitValidation(dataset(8), 0.1)).toThrow(new ConfigError('training.validationSplit', 'expected at least 1/8 (one validation sample out of the 8 samples of mine), found 0.1'));
    expect(() => splitValidation(dataset(1), 0.5)).toThrow('training.validationSplit: expected 0 (no validation split): mine has only 1 sample, too few to split, found 0.5');
  });
});
