/**
 * Loads the data set named by the run config's `data` section into SharedArrayBuffers.
 *
 * For mnist, fashion-mnist and cifar10 the files come from a local folder when one is given
 * (`options.dataDir` from --data-dir, else `config.dir`); otherwise from the download cache
 * (`config.cacheDir`, $RINGTRAIN_CACHE or ~/.cache/ringtrain), fetching and verifying the
 * official files the first time unless `config.download` is false.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { createSharedDataset, product, type SharedDataset } from './dataset.js';
import { defaultCacheDir, ensureFile } from './download.js';
import { CIFAR_ARCHIVE_NAME, findCifarFiles, readCifar, type CifarFiles } from './sources/cifar.js';
import { readEmbeddedMnist } from './sources/embedded-mnist.js';
import { expandPath } from './sources/files.js';
import type { DataInfo } from './data-info.js';
import type { FileSource } from './file-source.js';
import { FILE_SOURCES, fileSource, isFileSource, type FileSourceName } from './file-sources.js';
import { findMnistFiles, MNIST_FILE_NAMES, readMnistFiles, type MnistFiles } from './sources/idx.js';
import { OFFICIAL_SOURCES, type DownloadableSource } from './sources/official.js';
import { LINEAR_DEFAULT_SAMPLES, linearData, xorData } from './sources/synthetic.js';
import { SEQUENCE_DEFAULT_SAMPLES, SEQUENCE_TEST_SHARE, sequenceData, type SequenceTask } from './sources/sequences.js';

/** The data sources built into ringtrain (the user's own files: file-sources.ts). */
export interface BuiltinDataConfig {
  source: 'embedded-mnist' | 'mnist' | 'fashion-mnist' | 'cifar10' | 'xor' | 'linear' | SequenceTask;
  /** Local files for mnist/fashion-mnist/cifar10 (the CLI's --data-dir overrides it). */
  dir?: string;
  /** Download cache; default $RINGTRAIN_CACHE or ~/.cache/ringtrain. */
  cacheDir?: string;
  /** Default true: fetch official files when not found locally. */
  download?: boolean;
  /** Base URL overriding the official one. */
  mirror?: string;
  /** Synthetic sets: number of points (linear default 100, majority and recall 10,000 train and a fifth as many test; xor is always its 4 points). */
  samples?: number;
  /** Use only the first N train samples. */
  trainLimit?: number;
  /** Use only the first N test samples. */
  testLimit?: number;
}

/** The `data` section of a run config of a file source (csv, image-folder). */
export type FileDataConfig = { [K in FileSourceName]: (typeof FILE_SOURCES)[K] extends FileSource<infer C> ? C : never }[FileSourceName];

export type DataConfig = BuiltinDataConfig | FileDataConfig;

export interface LoadedData {
  train: SharedDataset;
  test?: SharedDataset;
  /** Number of classes for classification sets; undefined for regression and binary sets. */
  classes?: number;
  /** What the checkpoint keeps to read new data alike (class names, CSV columns and categories). */
  info?: DataInfo;
}

export interface LoadDataOptions {
  /** Seed of the run; synthetic data derives from it. */
  seed: number;
  /** --data-dir: a local folder that overrides `config.dir`. */
  dataDir?: string;
  log?: (line: string) => void;
  /**
   * Expected SHA-256 by file name, replacing the official ones. For tests that serve generated
   * files; production code leaves it unset so downloads are checked against the official hashes.
   */
  checksums?: Readonly<Record<string, string>>;
}

const IMAGE_SCALE = 1 / 255;

function cacheRoot(config: BuiltinDataConfig): string {
  return config.cacheDir !== undefined ? expandPath(config.cacheDir) : defaultCacheDir();
}

function checkCount(value: number | undefined, path: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
    throw new ConfigError(path, `expected a whole number of at least 1, found ${value}`);
  }
}

interface Arrays {
  name: string;
  featureShape: readonly number[];
  labelShape: readonly number[];
  features: Uint8Array | Float32Array;
  labels: ArrayLike<number> & { subarray(from: number, to: number): ArrayLike<number> };
  featureScale?: number;
}

/** createSharedDataset over the first `limit` samples (all when limit is undefined). */
function share(arrays: Arrays, limit: number | undefined, limitPath: string, log?: (line: string) => void): SharedDataset {
  const perSample = product(arrays.featureShape);
  const perLabel = product(arrays.labelShape);
  const size = arrays.features.length / perSample;
  let n = size;
  if (limit !== undefined) {
    if (limit > size) log?.(`${arrays.name}: ${limitPath} ${limit} is more than its ${size} samples; using all of them`);
    n = Math.min(limit, size);
  }
  return createSharedDataset({
    name: arrays.name,
    featureShape: arrays.featureShape,
    labelShape: arrays.labelShape,
    features: n === size ? arrays.features : arrays.features.subarray(0, n * perSample),
    labels: n === size ? arrays.labels : arrays.labels.subarray(0, n * perLabel),
    ...(arrays.featureScale === undefined ? {} : { featureScale: arrays.featureScale }),
  });
}

/** The train and test sets of a 10-class image source, as shared datasets with pixels scaled to [0, 1]. */
function imageClasses(
  source: string,
  shape: number[],
  train: { pixels: Uint8Array; labels: Arrays['labels'] },
  test: { pixels: Uint8Array; labels: Arrays['labels'] },
  config: DataConfig,
  options: LoadDataOptions,
): LoadedData {
  const dataset = (split: 'train' | 'test', set: typeof train, limit: number | undefined) =>
    share({ name: `${source}/${split}`, featureShape: shape, labelShape: [], features: set.pixels, labels: set.labels, featureScale: IMAGE_SCALE }, limit, `data.${split}Limit`, options.log);
  return { train: dataset('train', train, config.trainLimit), test: dataset('test', test, config.testLimit), classes: 10 };
}

function neededText(source: DownloadableSource): string {
  if (source === 'cifar10') {
    return `cifar10 needs data_batch_1..5 and test_batch as .bin or .bin.gz, or ${CIFAR_ARCHIVE_NAME}`;
  }
  return `${source} needs ${Object.values(MNIST_FILE_NAMES).join(', ')}, gzip or raw`;
}

/** Makes sure every official file of `source` is in the cache; returns their paths by name. */
async function cachedFiles(
  source: DownloadableSource,
  config: BuiltinDataConfig,
  options: LoadDataOptions,
): Promise<Map<string, string>> {
  const official = OFFICIAL_SOURCES[source];
  const cacheDir = join(cacheRoot(config), official.cacheFolder);
  const paths = new Map<string, string>();
  for (const file of official.files) {
    const path = await ensureFile({
      name: file.name,
      urls: file.urls,
      sha256: options.checksums?.[file.name] ?? file.sha256,
      cacheDir,
      ...(config.mirror === undefined ? {} : { mirror: config.mirror }),
      download: config.download ?? true,
      needed: neededText(source),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    paths.set(file.name, path);
  }
  return paths;
}

function localDir(config: BuiltinDataConfig, options: LoadDataOptions): string | undefined {
  const dir = options.dataDir ?? config.dir;
  return dir === undefined ? undefined : expandPath(dir);
}

/**
 * A local folder (--data-dir or data.dir) that is missing or is a file is said so, rather than
 * reported as a folder without the data files: `mnist: data folder /data/mnsit does not exist`.
 */
async function checkLocalDir(dir: string, source: DownloadableSource): Promise<void> {
  let problem: string | undefined;
  try {
    if (!(await stat(dir)).isDirectory()) problem = `${dir} is a file, expected a data folder`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problem =
      code === 'ENOENT'
        ? `data folder ${dir} does not exist`
        : code === 'ENOTDIR'
          ? `${dir} is not a folder (part of the path is a file), expected a data folder`
          : `cannot read the data folder ${dir} (${code ?? String(error)})`;
  }
  if (problem !== undefined) throw new DataError(`${source}: ${problem}`, { hint: neededText(source) });
}

async function loadMnistLike(source: 'mnist' | 'fashion-mnist', config: BuiltinDataConfig, options: LoadDataOptions): Promise<LoadedData> {
  const dir = localDir(config, options);
  let files: MnistFiles;
  if (dir !== undefined) {
    await checkLocalDir(dir, source);
    files = await findMnistFiles(dir, source);
    options.log?.(`${source}: reading ${dir}`);
  } else {
    const paths = await cachedFiles(source, config, options);
    files = {
      trainImages: paths.get(MNIST_FILE_NAMES.trainImages)!,
      trainLabels: paths.get(MNIST_FILE_NAMES.trainLabels)!,
      testImages: paths.get(MNIST_FILE_NAMES.testImages)!,
      testLabels: paths.get(MNIST_FILE_NAMES.testLabels)!,
    };
  }
  const { train, test } = await readMnistFiles(files);
  return imageClasses(source, [28, 28, 1], { pixels: train.images.pixels, labels: train.labels }, { pixels: test.images.pixels, labels: test.labels }, config, options);
}

async function loadCifar(config: BuiltinDataConfig, options: LoadDataOptions): Promise<LoadedData> {
  const dir = localDir(config, options);
  let files: CifarFiles;
  if (dir !== undefined) {
    await checkLocalDir(dir, 'cifar10');
    files = await findCifarFiles(dir);
    options.log?.(`cifar10: reading ${files.kind === 'archive' ? files.file : dir}`);
  } else {
    const paths = await cachedFiles('cifar10', config, options);
    files = { kind: 'archive', file: paths.get(CIFAR_ARCHIVE_NAME)! };
  }
  const { train, test } = await readCifar(files);
  return imageClasses('cifar10', [32, 32, 3], train, test, config, options);
}

async function loadEmbeddedMnist(config: BuiltinDataConfig, options: LoadDataOptions): Promise<LoadedData> {
  const { train, test } = await readEmbeddedMnist({
    cacheDir: join(cacheRoot(config), 'embedded-mnist'),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  options.log?.(`embedded-mnist: ${train.count} train and ${test.count} test images from the mnist package`);
  return imageClasses('embedded-mnist', [28, 28, 1], train, test, config, options);
}

function loadSynthetic(config: BuiltinDataConfig & { source: 'xor' | 'linear' }, options: LoadDataOptions): LoadedData {
  const featureShape = config.source === 'xor' ? [2] : [1];
  const samples = config.samples ?? LINEAR_DEFAULT_SAMPLES;
  const train = config.source === 'xor' ? xorData() : linearData(samples, options.seed, 0);
  const test = config.source === 'xor' ? xorData() : linearData(samples, options.seed, 1);
  return {
    train: share({ name: `${config.source}/train`, featureShape, labelShape: [1], ...train }, config.trainLimit, 'data.trainLimit', options.log),
    test: share({ name: `${config.source}/test`, featureShape, labelShape: [1], ...test }, config.testLimit, 'data.testLimit', options.log),
  };
}

/** A seeded sequence task (sources/sequences.ts): token ids, one class label of 10 per sequence. */
function loadSequences(config: BuiltinDataConfig & { source: SequenceTask }, options: LoadDataOptions): LoadedData {
  const samples = config.samples ?? SEQUENCE_DEFAULT_SAMPLES;
  const split = (name: 'train' | 'test', n: number, index: 0 | 1, limit: number | undefined) => {
    const data = sequenceData(config.source, n, options.seed, index);
    return share({ name: `${config.source}/${name}`, featureShape: [data.length], labelShape: [1], features: data.features, labels: data.labels }, limit, `data.${name}Limit`, options.log);
  };
  return {
    train: split('train', samples, 0, config.trainLimit),
    test: split('test', Math.max(1, Math.round(samples * SEQUENCE_TEST_SHARE)), 1, config.testLimit),
    classes: 10,
  };
}

/** `config` reading its (train) data from `dir` instead: --data-dir. */
export function withDataDir(config: DataConfig, dir: string): DataConfig {
  if (isFileSource(config.source)) return { ...config, [fileSource(config.source).dataDirField]: dir } as DataConfig;
  return { ...config, dir } as DataConfig;
}

/** Loads the configured data set. Problems with files or downloads throw DataError. */
export async function loadData(config: DataConfig, options: LoadDataOptions): Promise<LoadedData> {
  if (isFileSource(config.source)) return fileSource(config.source).load(config, options);
  return loadBuiltin(config as BuiltinDataConfig, options);
}

async function loadBuiltin(config: BuiltinDataConfig, options: LoadDataOptions): Promise<LoadedData> {
  checkCount(config.samples, 'data.samples');
  checkCount(config.trainLimit, 'data.trainLimit');
  checkCount(config.testLimit, 'data.testLimit');
  switch (config.source) {
    case 'embedded-mnist':
      return loadEmbeddedMnist(config, options);
    case 'mnist':
    case 'fashion-mnist':
      return loadMnistLike(config.source, config, options);
    case 'cifar10':
      return loadCifar(config, options);
    case 'xor':
    case 'linear':
      return loadSynthetic({ ...config, source: config.source }, options);
    case 'majority':
    case 'recall':
      return loadSequences({ ...config, source: config.source }, options);
    default: {
      const source: never = config.source;
      throw new DataError(`unknown data source ${JSON.stringify(source)}`);
    }
  }
}
