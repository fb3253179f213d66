/**
 * CIFAR-10, binary version. Each batch file holds records of 1 label byte and 3072 pixel bytes:
 * the 1024 red values of the 32x32 image (row-major), then 1024 green, then 1024 blue. The
 * official batches have 10,000 records each: data_batch_1..5 (train) and test_batch (test).
 * Files may be `.bin`, `.bin.gz` (gzip detected by magic bytes), or the official archive
 * `cifar-10-binary.tar.gz`, whose entries are `cifar-10-batches-bin/<batch>.bin`.
 * Pixels are converted to HWC layout: [32, 32, 3] bytes per image.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { DataError } from '../../errors.js';
import { checkRegularFile, FileRefusedError, READ_LIMITS } from '../../util/read-regular-file.js';
import { findFirst, isFile, isGzip, readMaybeGzip } from './files.js';

export const CIFAR_SIDE = 32;
export const CIFAR_PIXELS = CIFAR_SIDE * CIFAR_SIDE * 3;
export const CIFAR_RECORD = 1 + CIFAR_PIXELS;
export const CIFAR_CLASSES = 10;
export const CIFAR_TRAIN_BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5'] as const;
export const CIFAR_TEST_BATCH = 'test_batch';
export const CIFAR_ARCHIVE_NAME = 'cifar-10-binary.tar.gz';
/** The folder inside the official archive (and the usual name of the extracted folder). */
export const CIFAR_ARCHIVE_FOLDER = 'cifar-10-batches-bin';

/** One batch file's bytes, with the file it came from for error messages. */
export interface CifarBatchBytes {
  file: string;
  bytes: Uint8Array;
}

export interface CifarSplit {
  count: number;
  /** count * 32*32*3 bytes, HWC. */
  pixels: Uint8Array;
  labels: Uint8Array;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Checks the size of a batch and returns its number of records. */
export function cifarRecordCount(batch: CifarBatchBytes): number {
  const { file, bytes } = batch;
  if (bytes.length === 0) {
    throw new DataError(`${file}: empty file, expected CIFAR-10 records of ${CIFAR_RECORD} bytes (1 label byte + ${CIFAR_PIXELS} pixel bytes)`);
  }
  if (bytes.length % CIFAR_RECORD !== 0) {
    throw new DataError(
      `${file}: size ${bytes.length} bytes is not a multiple of the CIFAR-10 record size ${CIFAR_RECORD} ` +
        `(1 label byte + ${CIFAR_PIXELS} pixel bytes); ${Math.floor(bytes.length / CIFAR_RECORD)} whole records ` +
        `and ${bytes.length % CIFAR_RECORD} bytes left over`,
    );
  }
  return bytes.length / CIFAR_RECORD;
}

/** Converts batches (in order) into one split: labels checked, pixels planar RGB → HWC. */
export function convertCifarBatches(batches: readonly CifarBatchBytes[]): CifarSplit {
  const counts = batches.map(cifarRecordCount);
  const count = counts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  let at = 0;
  batches.forEach(({ file, bytes }, b) => {
    for (let r = 0; r < counts[b]!; r++, at++) {
      const src = r * CIFAR_RECORD;
      const label = bytes[src]!;
      if (label >= CIFAR_CLASSES) {
        throw new DataError(`${file}: record ${r} has label ${label}, expected 0..${CIFAR_CLASSES - 1}`);
      }
      labels[at] = label;
      const red = src + 1;
      const green = red + plane;
      const blue = green + plane;
      let dst = at * CIFAR_PIXELS;
      for (let p = 0; p < plane; p++) {
        pixels[dst++] = bytes[red + p]!;
        pixels[dst++] = bytes[green + p]!;
        pixels[dst++] = bytes[blue + p]!;
      }
    }
  });
  return { count, pixels, labels };
}

/** Reads one batch file, `.bin` or gzip-compressed. */
export async function readCifarBatchFile(file: string): Promise<CifarBatchBytes> {
  const { bytes } = await readMaybeGzip(file);
  return { file, bytes };
}

async function startsWithGzipMagic(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = new Uint8Array(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return isGzip(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

const BATCH_ENTRY = /^(data_batch_[1-5]|test_batch)\.bin$/;

/**
 * Reads the batch files out of the official archive (tar, gzip-compressed or not), streaming
 * through gunzip. Returns them by batch name ("data_batch_1", ..., "test_batch").
 */
export async function readCifarArchive(file: string): Promise<Map<string, CifarBatchBytes>> {
  let gzipped: boolean;
  try {
    checkRegularFile(file, { what: 'the CIFAR-10 archive', maxBytes: READ_LIMITS.data });
    gzipped = await startsWithGzipMagic(file);
  } catch (error) {
    if (error instanceof FileRefusedError) throw new DataError(error.message);
    throw new DataError(`${file}: cannot read the file (${reason(error)})`, { cause: error });
  }
  const input = createReadStream(file);
  const gunzip = gzipped ? createGunzip() : undefined;
  const extract = tar.extract();
  const fail = (error: Error) => extract.destroy(error);
  input.on('error', fail);
  gunzip?.on('error', fail);
  (gunzip ? input.pipe(gunzip) : input).pipe(extract);
  const batches = new Map<string, CifarBatchBytes>();
  try {
    for await (const entry of extract) {
      const name = basename(entry.header.name);
      const match = BATCH_ENTRY.exec(name);
      if (entry.header.type === 'file' && match) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        batches.set(match[1]!, { file: `${file}:${entry.header.name}`, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
      } else {
        entry.resume();
      }
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${file}: cannot read the CIFAR-10 archive (${reason(error)})`, { cause: error });
  } finally {
    input.destroy();
    gunzip?.destroy();
  }
  const missing = [...CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH].filter((b) => !batches.has(b));
  if (missing.length > 0) {
    throw new DataError(
      `${file}: the archive has no ${missing.map((b) => `${CIFAR_ARCHIVE_FOLDER}/${b}.bin`).join(', ')}; ` +
        `expected the official ${CIFAR_ARCHIVE_NAME} layout`,
    );
  }
  return batches;
}

/** Where the CIFAR-10 files of a local folder are. */
export type CifarFiles = { kind: 'batches'; train: string[]; test: string } | { kind: 'archive'; file: string };

/**
 * Looks in `dir` (and `dir/cifar-10-batches-bin/`) for the six batch files, `.bin` or `.bin.gz`;
 * failing that, for `cifar-10-binary.tar.gz`. Neither → DataError listing what is missing.
 */
export async function findCifarFiles(dir: string): Promise<CifarFiles> {
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const batch of [...CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]) {
    const names = [`${batch}.bin`, `${batch}.bin.gz`];
    const file = (await findFirst(dir, names)) ?? (await findFirst(join(dir, CIFAR_ARCHIVE_FOLDER), names));
    if (file === undefined) missing.push(`${batch}.bin`);
    else found.set(batch, file);
  }
  if (missing.length === 0) {
    return { kind: 'batches', train: CIFAR_TRAIN_BATCHES.map((b) => found.get(b)!), test: found.get(CIFAR_TEST_BATCH)! };
  }
  const archive = join(dir, CIFAR_ARCHIVE_NAME);
  if (await isFile(archive)) return { kind: 'archive', file: archive };
  throw new DataError(
    `cifar10: missing ${missing.length === 1 ? 'file' : 'files'} ${missing.join(', ')} (.bin or .bin.gz) in ${dir} ` +
      `(also looked in ${join(dir, CIFAR_ARCHIVE_FOLDER)}), and no ${CIFAR_ARCHIVE_NAME} there; ` +
      `expected data_batch_1..5 and test_batch, or the official archive`,
  );
}

/** Reads train (data_batch_1..5 in order) and test (test_batch) from local files or the archive. */
export async function readCifar(files: CifarFiles): Promise<{ train: CifarSplit; test: CifarSplit }> {
  if (files.kind === 'archive') {
    const batches = await readCifarArchive(files.file);
    const train = convertCifarBatches(CIFAR_TRAIN_BATCHES.map((b) => batches.get(b)!));
    const test = convertCifarBatches([batches.get(CIFAR_TEST_BATCH)!]);
    return { train, test };
  }
  const trainBatches: CifarBatchBytes[] = [];
  for (const file of files.train) trainBatches.push(await readCifarBatchFile(file));
  const train = convertCifarBatches(trainBatches);
  trainBatches.length = 0;
  const test = convertCifarBatches([await readCifarBatchFile(files.test)]);
  return { train, test };
}
