/**
 * Everything a run needs to continue exactly where it stopped, as one plain object: the
 * trainer builds it to save and gets it back on resume. `format.ts` turns it into bytes.
 */
import type { RunConfig } from '../config/schema.js';
import type { PlateauState } from '../optim/reduce-lr-on-plateau.js';
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

/** The learning rate where the run stands (absent in checkpoints older than schedules). */
export interface CheckpointLearningRate {
  /** The rate of the next update (the schedule's, after reduce-on-plateau's scale). */
  current: number;
  /** Reduce-on-plateau's state, when the run uses it. */
  plateau?: PlateauState;
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
  /**
   * The non-trainable weights (BatchNormalization's moving statistics, a frozen layer's
   * weights) as slices of `nonTrainable`, in the order of model.nonTrainableWeights. Absent
   * when the model has none, and in checkpoints written before ringtrain kept them.
   */
  nonTrainableLayout?: CheckpointLayoutEntry[];
  /** Exactly as long as nonTrainableLayout's end. */
  nonTrainable?: Float32Array;
  optimizer: CheckpointOptimizer;
  position: CheckpointPosition;
  sampler: { seed: number; shuffle: boolean };
  /** Opaque RNG states needed to continue (may be empty). */
  rngStates: { name: string; state: Uint8Array }[];
  /** Metrics history (the trainer writes the last epoch record and an epoch in progress), stored as JSON text; NaN and +-Infinity survive the round trip. */
  history: object[];
  /** How many replicas wrote it. */
  replicas: number;
  /** ISO time. */
  createdAt: string;
  learningRate?: CheckpointLearningRate;
  /** States of the run's callbacks that keep one (early stopping); absent or empty without. */
  callbacks?: CheckpointCallbackState[];
  /** Class names, CSV columns and categories of the run's data (absent for built-in sources). */
  dataInfo?: DataInfo;
}

/** A callback's state: JSON (NaN and +-Infinity survive) and float32 tensors of any length. */
export interface CheckpointCallbackState {
  name: string;
  state: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

/** Name of the flat parameter tensor in the file. */
export const PARAMS_TENSOR = 'params';
/** Name of the flat non-trainable weights tensor in the file. */
export const NON_TRAINABLE_TENSOR = 'non_trainable';
