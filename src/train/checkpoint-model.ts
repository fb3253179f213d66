/**
 * A trained model used after its run: evaluated (sharded over replicas, as during training) or
 * asked for predictions, starting from a checkpoint's parameters, on data read the way the run
 * read its own (the class names, CSV columns and categories kept in the checkpoint).
 */
import * as tf from '@tensorflow/tfjs';
import { silenceCpuBanner } from '../backend/select-backend.js';
import type { LoadedCheckpoint } from '../checkpoint/locate.js';
import type { RunConfig } from '../config/schema.js';
import { createSharedDataset, product, type SharedDataset } from '../data/dataset.js';
import type { PredictInputs } from '../data/file-source.js';
import { fileSource, isFileSource } from '../data/file-sources.js';
import { loadData, type BuiltinDataConfig } from '../data/load-data.js';
import { csvSource } from '../data/sources/csv.js';
import { imageFolderSource } from '../data/sources/image-folder.js';
import { readMaybeGzip } from '../data/sources/files.js';
import { DataError, UserError } from '../errors.js';
import { Trainer, type Evaluation } from './trainer.js';

export interface CheckpointModelOptions {
  /** Replicas (default: the machine's cores). */
  workers?: number | 'auto';
  log?: (line: string) => void;
  warn?: (line: string) => void;
}

/** The checkpoint's run config for a model that only evaluates or predicts: no validation split, no monitor. */
function configFor(ckpt: LoadedCheckpoint, workers: number | 'auto' | undefined): RunConfig {
  const { config } = ckpt;
  const { monitor: _monitor, ...checkpoint } = config.checkpoint;
  return {
    ...config,
    training: { ...config.training, validationSplit: 0, validateOnTest: false },
    parallel: { ...config.parallel, workers: workers ?? 'auto' },
    checkpoint,
  };
}

async function withTrainer<T>(ckpt: LoadedCheckpoint, train: SharedDataset, options: CheckpointModelOptions, use: (trainer: Trainer) => Promise<T>): Promise<T> {
  const trainer = await Trainer.create(configFor(ckpt, options.workers), {
    data: { train },
    initialParams: ckpt.params,
    // BatchNormalization's moving statistics, which evaluation and prediction use.
    ...(ckpt.nonTrainable ? { initialNonTrainable: ckpt.nonTrainable } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.warn ? { warn: options.warn } : {}),
  });
  try {
    return await use(trainer);
  } finally {
    await trainer.close();
  }
}

/**
 * Labelled data to evaluate on: the data at `dataDir` (a folder or file of the run's source:
 * mnist files, CSV files, a folder of class subfolders), else the run's test data.
 */
export async function evaluationData(ckpt: LoadedCheckpoint, dataDir?: string, log?: (line: string) => void): Promise<SharedDataset> {
  const data = ckpt.config.data;
  if (!data) throw new UserError(`${ckpt.file}: the run's data was passed in code (its config has no data section); evaluate it with Trainer.evaluate`);
  if (isFileSource(data.source)) {
    const set = await fileSource(data.source).readLabelled(dataDir, data, ckpt.dataInfo ?? {});
    if (!set) throw new UserError(`${ckpt.file}: the run has no test data (its config names none): pass --data-dir with labelled data`);
    return set;
  }
  const loaded = await loadData(data as BuiltinDataConfig, { seed: ckpt.config.training.seed, ...(dataDir === undefined ? {} : { dataDir }), ...(log ? { log } : {}) });
  if (!loaded.test) throw new UserError(`${ckpt.file}: data source ${data.source} has no test data`);
  return loaded.test;
}

/** Loss and metrics of the checkpoint's parameters on `data`, sharded over replicas. */
export async function evaluateCheckpoint(ckpt: LoadedCheckpoint, data: SharedDataset, options: CheckpointModelOptions = {}): Promise<Evaluation> {
  if (data.size === 0) throw new DataError(`${data.name}: no samples to evaluate on`);
  return withTrainer(ckpt, data, options, (trainer) => trainer.evaluate('train'));
}

/** The model's input shape (one sample) and output size, from the checkpoint's topology. */
export async function modelShapes(ckpt: LoadedCheckpoint): Promise<{ inputShape: number[]; outputSize: number }> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    const model = await tf.models.modelFromJSON(ckpt.modelTopology as tf.serialization.ConfigDict);
    try {
      const inputShape = model.inputs[0]!.shape.slice(1).map((d) => d ?? 1);
      const outputSize = product(model.outputs[0]!.shape.slice(1).map((d) => d ?? 1));
      return { inputShape, outputSize };
    } finally {
      model.dispose();
    }
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}

/** The model's outputs for `features` (samples one after another), `outputSize` values per sample. */
export async function predictWithCheckpoint(ckpt: LoadedCheckpoint, features: Float32Array, options: CheckpointModelOptions = {}): Promise<{ outputs: Float32Array; outputSize: number }> {
  const { inputShape, outputSize } = await modelShapes(ckpt);
  const perSample = product(inputShape);
  if (features.length === 0 || features.length % perSample !== 0) {
    throw new DataError(`predict: expected samples of shape [${inputShape.join(', ')}] (${perSample} values each), found ${features.length} values`);
  }
  const count = features.length / perSample;
  // The trainer checks labels against the loss: zeros fit every loss.
  const sparse = ckpt.config.loss.name === 'sparseCategoricalCrossentropy';
  const labelShape = sparse ? [] : [outputSize];
  const inputs = createSharedDataset({ name: 'predict', featureShape: inputShape, labelShape, features, labels: new Float32Array(count * (sparse ? 1 : outputSize)) });
  const outputs = await withTrainer(ckpt, inputs, options, (trainer) => trainer.predict(features));
  return { outputs, outputSize };
}

/** A JSON array of samples, each a (nested) array of numbers. */
async function readJsonSamples(file: string, perSample: number): Promise<PredictInputs> {
  const text = new TextDecoder().decode((await readMaybeGzip(file)).bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DataError(`${file}: expected a JSON array of samples, found invalid JSON (${(error as Error).message})`, { cause: error });
  }
  if (!Array.isArray(value)) throw new DataError(`${file}: expected a JSON array of samples, found ${value === null ? 'null' : typeof value}`);
  const features = new Float32Array(value.length * perSample);
  value.forEach((sample, i) => {
    const flat = Array.isArray(sample) ? (sample as unknown[]).flat(Infinity) : [sample];
    if (flat.length !== perSample || !flat.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new DataError(`${file}: sample ${i}: expected ${perSample} numbers, found ${JSON.stringify(sample).slice(0, 80)}`);
    }
    features.set(flat as number[], i * perSample);
  });
  return { names: value.map((_, i) => String(i)), features };
}

/**
 * Samples to predict from `input`: a JSON array (*.json), a CSV file or folder (*.csv: the
 * run's columns for a CSV run, else rows of numbers without a header), or images (a folder or
 * an image file), resized to the model's input.
 */
export async function predictionInputs(ckpt: LoadedCheckpoint, input: string): Promise<PredictInputs> {
  const { inputShape } = await modelShapes(ckpt);
  const perSample = product(inputShape);
  // Absent when the run's data was passed in code: inputs are then read as plain numbers or images.
  const data = ckpt.config.data;
  const info = ckpt.dataInfo ?? {};
  if (/\.json$/i.test(input)) return readJsonSamples(input, perSample);
  if (/\.csv(\.gz)?$/i.test(input) || (data?.source === 'csv' && !/\.(png|jpe?g)$/i.test(input))) {
    if (data?.source === 'csv') return csvSource.readInputs(input, data, info);
    const columns = Array.from({ length: perSample }, (_, i) => String(i));
    return csvSource.readInputs(input, { source: 'csv', path: input, header: false }, { featureColumns: columns });
  }
  if (data?.source === 'image-folder') return imageFolderSource.readInputs(input, data, info);
  if (inputShape.length !== 3 || (inputShape[2] !== 1 && inputShape[2] !== 3)) {
    throw new DataError(`${input}: images need a model whose input is [height, width, 1 or 3], this one takes [${inputShape.join(', ')}]; give a JSON array or a CSV file`);
  }
  return imageFolderSource.readInputs(input, { source: 'image-folder', dir: input, imageSize: [inputShape[0]!, inputShape[1]!], channels: inputShape[2] as 1 | 3 }, info);
}
