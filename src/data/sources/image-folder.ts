/**
 * A folder of images with one subfolder per class, as Keras's `image_dataset_from_directory`:
 * the class names are the subfolder names in sorted order (class id = index), PNG and JPEG
 * files (other files are skipped, as Keras does) are decoded, converted to `channels` (3: RGB,
 * 1: grayscale) and resized to `imageSize` [height, width] (default [256, 256], Keras's), kept
 * as bytes and scaled to [0, 1] when a batch is gathered. The images are shuffled once, with the
 * run's seed (Keras shuffles too), so that `training.validationSplit` takes a mix of classes.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { z } from 'zod';
import { DataError } from '../../errors.js';
import { mixSeed, mulberry32 } from '../../util/random.js';
import type { DataInfo } from '../data-info.js';
import { createSharedDataset, type SharedDataset } from '../dataset.js';
import type { FileSource } from '../file-source.js';
import type { LoadDataOptions } from '../load-data.js';
import { decodeImage, IMAGE_EXTENSIONS, imageToPixels } from './decode-image.js';
import { expandPath, readMaybeGzip } from './files.js';

const dirSchema = z.string({ error: 'a non-empty string (a folder with one subfolder per class)' }).min(1, { error: 'a non-empty string (a folder with one subfolder per class)' });
const limitSchema = z.int({ error: 'an integer >= 1' }).min(1, { error: 'an integer >= 1' });
const sideSchema = z.int({ error: 'an integer from 1 to 4096' }).min(1, { error: 'an integer from 1 to 4096' }).max(4096, { error: 'an integer from 1 to 4096' });

export const imageFolderDataSchema = z.strictObject(
  {
    source: z.literal('image-folder'),
    dir: dirSchema,
    testDir: dirSchema.optional(),
    imageSize: z.tuple([sideSchema, sideSchema], { error: '[height, width], e.g. [64, 64]' }).optional(),
    channels: z.union([z.literal(1), z.literal(3)], { error: '1 (grayscale) or 3 (RGB)' }).optional(),
    trainLimit: limitSchema.optional(),
    testLimit: limitSchema.optional(),
  },
  { error: 'an object such as {"source": "image-folder", "dir": "photos/train", "imageSize": [64, 64]}' },
);

export type ImageFolderDataConfig = z.output<typeof imageFolderDataSchema>;

export const DEFAULT_IMAGE_SIZE: [number, number] = [256, 256];
/** Mixed into the run seed so the file order does not reuse the weights' or sampler's streams. */
const SHUFFLE_STREAM = 0x696d67; // "img"
const IMAGE_SCALE = 1 / 255;

function isImage(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

async function listDir(dir: string, what: string): Promise<{ name: string; isDir: boolean }[]> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new DataError(`${what} ${dir}: expected a folder, found a file`);
    return (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, isDir: e.isDirectory() }));
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${what} ${dir}: cannot read the folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** Image files under `dir`, by class subfolder, in sorted order. */
async function listClasses(dir: string, what: string): Promise<{ classNames: string[]; files: { file: string; label: number }[] }> {
  const classNames = (await listDir(dir, what)).filter((e) => e.isDir).map((e) => e.name).sort();
  if (classNames.length === 0) throw new DataError(`${what} ${dir}: expected one subfolder per class, found no subfolder`);
  const files: { file: string; label: number }[] = [];
  for (const [label, name] of classNames.entries()) {
    const images = (await listDir(join(dir, name), what)).filter((e) => !e.isDir && isImage(e.name)).map((e) => e.name).sort();
    for (const image of images) files.push({ file: join(dir, name, image), label });
  }
  if (files.length === 0) throw new DataError(`${what} ${dir}: expected PNG or JPEG files in the class subfolders (${classNames.join(', ')}), found none`);
  return { classNames, files };
}

async function readPixels(file: string, size: [number, number], channels: 1 | 3, into: Uint8Array, at: number): Promise<void> {
  const { bytes } = await readMaybeGzip(file);
  into.set(imageToPixels(decodeImage(bytes, file), size, channels), at);
}

function shape(config: ImageFolderDataConfig): { size: [number, number]; channels: 1 | 3 } {
  return { size: config.imageSize ?? DEFAULT_IMAGE_SIZE, channels: config.channels ?? 3 };
}

/** The images of `files` as one dataset, in the given order. */
async function readDataset(name: string, files: { file: string; label: number }[], config: ImageFolderDataConfig): Promise<SharedDataset> {
  const { size, channels } = shape(config);
  const perImage = size[0] * size[1] * channels;
  const pixels = new Uint8Array(files.length * perImage);
  for (const [i, f] of files.entries()) await readPixels(f.file, size, channels, pixels, i * perImage);
  return createSharedDataset({ name, featureShape: [size[0], size[1], channels], labelShape: [], features: pixels, labels: files.map((f) => f.label), featureScale: IMAGE_SCALE });
}

function shuffled<T>(items: T[], seed: number): T[] {
  const random = mulberry32(mixSeed(seed, SHUFFLE_STREAM));
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Labelled images of a folder whose class subfolders must be among the training classes. */
async function readTestFolder(dir: string, config: ImageFolderDataConfig, info: DataInfo, what: string, limit?: number): Promise<SharedDataset> {
  const listed = await listClasses(dir, what);
  const known = info.classNames ?? [];
  const ids = listed.classNames.map((name) => {
    const id = known.indexOf(name);
    if (id < 0) throw new DataError(`${what} ${join(dir, name)}: expected a subfolder named after a training class (${known.join(', ')}), found "${name}"`);
    return id;
  });
  const files = listed.files.map((f) => ({ file: f.file, label: ids[f.label]! }));
  return readDataset(`image-folder:${dir}`, limit === undefined ? files : files.slice(0, limit), config);
}

export const imageFolderSource: FileSource<ImageFolderDataConfig> = {
  schema: imageFolderDataSchema,
  dataDirField: 'dir',
  fields: Object.keys(imageFolderDataSchema.shape),

  async load(config: ImageFolderDataConfig, options: LoadDataOptions) {
    const dir = expandPath(options.dataDir ?? config.dir);
    const { classNames, files } = await listClasses(dir, 'data.dir:');
    const trainFiles = shuffled(files, options.seed);
    const train = await readDataset('image-folder/train', config.trainLimit === undefined ? trainFiles : trainFiles.slice(0, config.trainLimit), config);
    const { size, channels } = shape(config);
    const info: DataInfo = { classNames, imageSize: size, channels };
    options.log?.(`image-folder: ${train.size} images of ${classNames.length} classes (${classNames.join(', ')}) from ${dir}, resized to ${size[0]}x${size[1]}x${channels}`);
    const test = config.testDir === undefined ? undefined : await readTestFolder(expandPath(config.testDir), config, info, 'data.testDir:', config.testLimit);
    return { train, ...(test ? { test } : {}), classes: classNames.length, info };
  },

  async readLabelled(path: string | undefined, config: ImageFolderDataConfig, info: DataInfo) {
    const dir = path ?? config.testDir;
    return dir === undefined ? undefined : readTestFolder(expandPath(dir), config, info, path === undefined ? 'data.testDir:' : 'data');
  },

  /** Every PNG and JPEG file under `path` (a folder, searched recursively, or one image file). */
  async readInputs(path: string, config: ImageFolderDataConfig) {
    const root = expandPath(path);
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of (await listDir(dir, 'input')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (e.isDir) await walk(join(dir, e.name));
        else if (isImage(e.name)) files.push(join(dir, e.name));
      }
    };
    let isDir = false;
    try {
      isDir = (await stat(root)).isDirectory();
    } catch (error) {
      throw new DataError(`input ${root} does not exist (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
    }
    if (isDir) await walk(root);
    else files.push(root);
    if (files.length === 0) throw new DataError(`input ${root}: expected PNG or JPEG files, found none`);
    const { size, channels } = shape(config);
    const perImage = size[0] * size[1] * channels;
    const pixels = new Uint8Array(files.length * perImage);
    for (const [i, file] of files.entries()) await readPixels(file, size, channels, pixels, i * perImage);
    const features = new Float32Array(pixels.length);
    for (let i = 0; i < pixels.length; i++) features[i] = pixels[i]! * IMAGE_SCALE;
    return { names: files.map((f) => (isDir ? relative(root, f) : f)), features };
  },
};
