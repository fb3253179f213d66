/**
 * A dataset held in SharedArrayBuffers, so every replica reads the same bytes without copies.
 * Images stay as bytes and are scaled while a batch is gathered; labels are float32 (class ids
 * or regression targets).
 */
import { ConfigError, DataError } from '../errors.js';

export type FeatureType = 'uint8' | 'float32';

export interface SharedDataset {
  /** Human-readable name, e.g. "mnist/train". */
  readonly name: string;
  /** Shape of one sample's features, e.g. [28, 28, 1]. */
  readonly featureShape: readonly number[];
  /** Shape of one sample's label: [] for a class id or scalar, [k] for k targets. */
  readonly labelShape: readonly number[];
  readonly featureType: FeatureType;
  /** Multiplier applied to stored features when a batch is gathered (1/255 for pixels). */
  readonly featureScale: number;
  readonly features: SharedArrayBuffer;
  readonly labels: SharedArrayBuffer;
  /**
   * Optional per-sample weights (float32, one per sample), as Keras's sample_weight: each
   * sample's loss is multiplied by its weight (training and evaluation; see model/sample-weights.ts).
   */
  readonly weights?: SharedArrayBuffer;
  /** First sample of this view and the number of samples in it (views share buffers). */
  readonly start: number;
  readonly size: number;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface DatasetInit {
  name: string;
  featureShape: readonly number[];
  labelShape: readonly number[];
  features: Uint8Array | Float32Array;
  labels: ArrayLike<number>;
  featureScale?: number;
  /** One finite weight >= 0 per sample (Keras's sample_weight); omitted: every sample weighs 1. */
  weights?: ArrayLike<number>;
}

/** Copies features and labels into fresh SharedArrayBuffers. */
export function createSharedDataset(init: DatasetInit): SharedDataset {
  const perSample = product(init.featureShape);
  const perLabel = product(init.labelShape);
  const size = perSample === 0 ? 0 : init.features.length / perSample;
  if (!Number.isInteger(size)) {
    throw new DataError(
      `${init.name}: ${init.features.length} feature values are not a whole number of samples of shape [${init.featureShape.join(', ')}]`,
    );
  }
  if (init.labels.length !== size * perLabel) {
    throw new DataError(`${init.name}: expected ${size * perLabel} label values for ${size} samples, found ${init.labels.length}`);
  }
  const featureType: FeatureType = init.features instanceof Uint8Array ? 'uint8' : 'float32';
  const features = new SharedArrayBuffer(init.features.byteLength);
  (featureType === 'uint8' ? new Uint8Array(features) : new Float32Array(features)).set(init.features);
  const labels = new SharedArrayBuffer(init.labels.length * 4);
  new Float32Array(labels).set(init.labels);
  const weights = init.weights === undefined ? undefined : sharedWeights(init.name, init.weights, size);
  return {
    name: init.name,
    featureShape: [...init.featureShape],
    labelShape: [...init.labelShape],
    featureType,
    featureScale: init.featureScale ?? 1,
    features,
    labels,
    ...(weights ? { weights } : {}),
    start: 0,
    size,
  };
}

function sharedWeights(name: string, values: ArrayLike<number>, size: number): SharedArrayBuffer {
  if (values.length !== size) throw new DataError(`${name}: expected ${size} sample weights for ${size} samples, found ${values.length}`);
  for (let i = 0; i < values.length; i++) {
    const w = values[i]!;
    if (!(Number.isFinite(w) && w >= 0)) throw new DataError(`${name}: sample weight ${i} must be a finite number >= 0, found ${w}`);
  }
  const buffer = new SharedArrayBuffer(size * 4);
  new Float32Array(buffer).set(values);
  return buffer;
}

/** A view of samples [from, to) of a dataset, sharing its buffers. */
export function sliceDataset(ds: SharedDataset, from: number, to: number, name = ds.name): SharedDataset {
  if (from < 0 || to > ds.size || from > to) {
    throw new RangeError(`slice [${from}, ${to}) is outside ${ds.name} of ${ds.size} samples`);
  }
  return { ...ds, name, start: ds.start + from, size: to - from };
}

/** Keras' validation_split: the last `fraction` of the samples (before shuffling) validate. */
export function splitValidation(ds: SharedDataset, fraction: number): { train: SharedDataset; validation: SharedDataset } {
  const validationSize = Math.floor(ds.size * fraction);
  const cut = ds.size - validationSize;
  // An empty side would validate on nothing (NaN metrics) or train on nothing; Keras refuses too.
  if (fraction > 0 && ds.size > 0 && (validationSize === 0 || cut === 0)) {
    const n = ds.size;
    const expected =
      n === 1
        ? `0 (no validation split): ${ds.name} has only 1 sample, too few to split`
        : validationSize === 0
          ? `at least 1/${n} (one validation sample out of the ${n} samples of ${ds.name})`
          : `at most ${n - 1}/${n} (one training sample out of the ${n} samples of ${ds.name})`;
    throw new ConfigError('training.validationSplit', `expected ${expected}, found ${fraction}`);
  }
  return {
    train: sliceDataset(ds, 0, cut, `${ds.name}[train]`),
    validation: sliceDataset(ds, cut, ds.size, `${ds.name}[validation]`),
  };
}

/** Typed views over a dataset's buffers, made once per thread. */
export class DatasetReader {
  readonly perSample: number;
  readonly perLabel: number;
  private readonly bytes: Uint8Array | undefined;
  private readonly floats: Float32Array | undefined;
  private readonly labelValues: Float32Array;
  private readonly weightValues: Float32Array | undefined;

  constructor(readonly ds: SharedDataset) {
    this.perSample = product(ds.featureShape);
    this.perLabel = product(ds.labelShape);
    if (ds.featureType === 'uint8') this.bytes = new Uint8Array(ds.features);
    else this.floats = new Float32Array(ds.features);
    this.labelValues = new Float32Array(ds.labels);
    if (ds.weights) this.weightValues = new Float32Array(ds.weights);
  }

  get hasWeights(): boolean {
    return this.weightValues !== undefined;
  }

  /** The sample weights of `indices[from..to)` (all 1 when the dataset has none). */
  gatherWeights(indices: ArrayLike<number>, from: number, to: number): Float32Array {
    const out = new Float32Array(to - from).fill(1);
    const values = this.weightValues;
    if (values) for (let i = from; i < to; i++) out[i - from] = values[this.ds.start + indices[i]!]!;
    return out;
  }

  /** Gathers samples `indices[from..to)` (indices relative to the view) into x and y. */
  gather(indices: ArrayLike<number>, from: number, to: number, x: Float32Array, y: Float32Array): void {
    const { perSample, perLabel } = this;
    const scale = this.ds.featureScale;
    for (let i = from; i < to; i++) {
      const sample = this.ds.start + indices[i]!;
      const row = (i - from) * perSample;
      const src = sample * perSample;
      if (this.bytes) {
        const bytes = this.bytes;
        for (let j = 0; j < perSample; j++) x[row + j] = bytes[src + j]! * scale;
      } else {
        const part = this.floats!.subarray(src, src + perSample);
        if (scale === 1) x.set(part, row);
        else for (let j = 0; j < perSample; j++) x[row + j] = part[j]! * scale;
      }
      y.set(this.labelValues.subarray(sample * perLabel, (sample + 1) * perLabel), (i - from) * perLabel);
    }
  }

  /** Gathers the contiguous samples [from, to) of the view. */
  gatherRange(from: number, to: number, x: Float32Array, y: Float32Array): void {
    const indices = new Int32Array(to - from);
    for (let i = 0; i < indices.length; i++) indices[i] = from + i;
    this.gather(indices, 0, indices.length, x, y);
  }
}
