/**
 * MNIST-format IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.
 *
 * Images: big-endian magic 0x00000803 (two zero bytes, type 0x08 = unsigned byte, 3 dimensions),
 * then the image count, rows and columns as big-endian uint32, then count*rows*cols pixel bytes.
 * Labels: magic 0x00000801, the count, then one byte per label.
 */
import { basename } from 'node:path';
import { DataError } from '../../errors.js';
import { findFirst, readMaybeGzip } from './files.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const IMAGES_HEADER = 16;
const LABELS_HEADER = 8;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count*rows*cols bytes, row-major, one image after another. */
  pixels: Uint8Array;
}

export interface IdxSplit {
  images: IdxImages;
  labels: Uint8Array;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function sizeOf(bytes: Uint8Array, gzipped: boolean): string {
  return `${bytes.length} bytes${gzipped ? ' after gunzip' : ''}`;
}

function checkHeader(
  bytes: Uint8Array,
  file: string,
  gzipped: boolean,
  kind: 'images' | 'labels',
): DataView {
  const headerBytes = kind === 'images' ? IMAGES_HEADER : LABELS_HEADER;
  const magic = kind === 'images' ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
  if (bytes.length === 0) {
    throw new DataError(`${file}: empty file, expected IDX ${kind} (magic ${hex(magic)}, ${headerBytes}-byte header)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 4) {
    const found = view.getUint32(0);
    if (found !== magic) {
      throw new DataError(`${file}: bad magic number ${hex(found)}, expected ${hex(magic)} (IDX ${kind})`);
    }
  }
  if (bytes.length < headerBytes) {
    throw new DataError(
      `${file}: truncated: an IDX ${kind} header has ${headerBytes} bytes but the file has ${sizeOf(bytes, gzipped)}`,
    );
  }
  return view;
}

/** Parses the bytes of an IDX images file; `file` names it in errors. */
export function parseIdxImages(
  bytes: Uint8Array,
  file: string,
  options: { gzipped?: boolean; rows?: number; cols?: number } = {},
): IdxImages {
  const gzipped = options.gzipped ?? false;
  const view = checkHeader(bytes, file, gzipped, 'images');
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  if (rows === 0 || cols === 0) {
    throw new DataError(`${file}: bad dimensions ${rows}x${cols}, expected images of at least 1x1`);
  }
  if ((options.rows !== undefined && rows !== options.rows) || (options.cols !== undefined && cols !== options.cols)) {
    throw new DataError(
      `${file}: images are ${rows}x${cols}, expected ${options.rows ?? rows}x${options.cols ?? cols}`,
    );
  }
  const expected = IMAGES_HEADER + count * rows * cols;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? 'truncated: ' : 'wrong size: ';
    throw new DataError(
      `${file}: ${what}header says ${count} images of ${rows}x${cols} (${expected} bytes) but the file has ${sizeOf(bytes, gzipped)}`,
    );
  }
  return { count, rows, cols, pixels: bytes.subarray(IMAGES_HEADER) };
}

/** Parses the bytes of an IDX labels file; every label must be in 0..classes-1. */
export function parseIdxLabels(
  bytes: Uint8Array,
  file: string,
  options: { gzipped?: boolean; classes?: number } = {},
): Uint8Array {
  const gzipped = options.gzipped ?? false;
  const classes = options.classes ?? 10;
  const view = checkHeader(bytes, file, gzipped, 'labels');
  const count = view.getUint32(4);
  const expected = LABELS_HEADER + count;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? 'truncated: ' : 'wrong size: ';
    throw new DataError(
      `${file}: ${what}header says ${count} labels (${expected} bytes) but the file has ${sizeOf(bytes, gzipped)}`,
    );
  }
  const labels = bytes.subarray(LABELS_HEADER);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) {
      throw new DataError(`${file}: label ${labels[i]} at index ${i} is out of range, expected 0..${classes - 1}`);
    }
  }
  return labels;
}

export async function readIdxImages(file: string, options: { rows?: number; cols?: number } = {}): Promise<IdxImages> {
  const { bytes, gzipped } = await readMaybeGzip(file);
  return parseIdxImages(bytes, file, { ...options, gzipped });
}

export async function readIdxLabels(file: string, options: { classes?: number } = {}): Promise<Uint8Array> {
  const { bytes, gzipped } = await readMaybeGzip(file);
  return parseIdxLabels(bytes, file, { ...options, gzipped });
}

/** Reads an images file and its labels file and checks that their counts agree. */
export async function readIdxPair(
  imagesFile: string,
  labelsFile: string,
  options: { rows?: number; cols?: number; classes?: number } = {},
): Promise<IdxSplit> {
  const images = await readIdxImages(imagesFile, options);
  const labels = await readIdxLabels(labelsFile, options);
  if (images.count !== labels.length) {
    throw new DataError(
      `${labelsFile}: ${labels.length} labels but ${basename(imagesFile)} has ${images.count} images, expected one label per image`,
    );
  }
  return { images, labels };
}

/** The four files of MNIST and Fashion-MNIST, by their official (gzip) names. */
export const MNIST_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

export type MnistFileKey = keyof typeof MNIST_FILE_NAMES;
export type MnistFiles = Record<MnistFileKey, string>;

/**
 * Finds the four files in a local folder, each under its official name or without `.gz`.
 * Missing files → DataError listing them and the folder.
 */
export async function findMnistFiles(dir: string, sourceName: string): Promise<MnistFiles> {
  const found: Partial<MnistFiles> = {};
  const missing: string[] = [];
  for (const [key, name] of Object.entries(MNIST_FILE_NAMES) as [MnistFileKey, string][]) {
    const raw = name.replace(/\.gz$/, '');
    const file = await findFirst(dir, [name, raw]);
    if (file === undefined) missing.push(`${name} (or ${raw})`);
    else found[key] = file;
  }
  if (missing.length > 0) {
    throw new DataError(
      `${sourceName}: missing ${missing.length === 1 ? 'file' : 'files'} ${missing.join(', ')} in ${dir}; ` +
        `expected the four IDX files ${Object.values(MNIST_FILE_NAMES).join(', ')} (gzip or raw)`,
    );
  }
  return found as MnistFiles;
}

/** Reads the train and test splits of MNIST / Fashion-MNIST (28x28 images, labels 0..9). */
export async function readMnistFiles(files: MnistFiles): Promise<{ train: IdxSplit; test: IdxSplit }> {
  const options = { rows: 28, cols: 28, classes: 10 };
  const train = await readIdxPair(files.trainImages, files.trainLabels, options);
  const test = await readIdxPair(files.testImages, files.testLabels, options);
  return { train, test };
}
