/**
 * Everything a run needs to continue exactly where it stopped, as one plain object: the
 * trainer builds it to save and gets it back on resume. `format.ts` turns it into bytes.
 */
import type { RunConfig } from '../config/schema.js';
import type { DataInfo } from '../data/data-info.js';

export interface CheckpointTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface CheckpointLayoutEntry {
  name: string;
  shape: number[];
  /** In elements, into params and into each optimizer state tensor. */
  offset: number;
  /** Elements: the product of `shape`. */
  size: number;
}

export interface CheckpointPosition {
  /** The next step to run is (epoch, stepInEpoch). */
  epoch: number;
  stepInEpoch: number;
  /** Updates applied so far over the whole run. */
  globalStep: number;
  samplesSeen: number;
}

export interface CheckpointOptimizer {
  name: string;
  hyperParameters: Record<string, number | boolean>;
  /** Updates applied so far (the next update is step + 1). */
  step: number;
  /** Full-length flat arrays named as ShardOptimizer.stateNames (e.g. adam: m, v). */
  state: CheckpointTensor[];
}

export interface CheckpointState {
  ringtrainVersion: string;
  /** Stored as JSON text. */
  config: RunConfig;
  /** model.toJSON(null, false) of the tf.LayersModel, stored as JSON text. */
  modelTopology: object;
  layout: CheckpointLayoutEntry[];
  /** The flat parameter vector: exactly as long as the layout's end (last offset + size). */
  params: Float32Array;
  optimizer: CheckpointOptimizer;
  position: CheckpointPosition;
  sampler: { seed: number; shuffle: boolean };
  /** Opaque RNG states needed to continue (may be empty). */
  rngStates: { name: string; state: Uint8Array }[];
  /** Metrics history (epoch records), stored as JSON text; NaN and +-Infinity survive the round trip. */
  history: object[];
  /** How many replicas wrote it. */
  replicas: number;
  /** ISO time. */
  createdAt: string;
  /** Class names, CSV columns and categories of the run's data (absent for built-in sources). */
  dataInfo?: DataInfo;
}

/** Name of the flat parameter tensor in the file. */
export const PARAMS_TENSOR = 'params';
