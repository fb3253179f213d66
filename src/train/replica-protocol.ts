/**
 * What the coordinator and a replica say to each other over comlink. Large data never goes
 * through these calls: it lives in the shared buffers both sides map.
 */
import type { BackendName } from '../backend/select-backend.js';
import type { SharedDataset } from '../data/dataset.js';
import type { ModelSpec } from '../model/build-model.js';
import type { LossSpec, MetricName } from '../model/objective.js';
import type { ClassWeight } from '../model/sample-weights.js';
import type { ParamEntry } from '../model/param-layout.js';
import type { RateAdjustment } from '../optim/learning-rate.js';
import type { OptimizerSpec } from '../optim/optimizer.js';
import type { SharedTrainingBuffers } from './shared-state.js';
import type { RecordedSpans } from './span-recorder.js';

export type { ReduceScatterKind } from '../collective/shm-collective.js';
import type { ReduceScatterKind } from '../collective/shm-collective.js';

/** The name of the error a replica throws for a non-finite loss or gradient (policy "stop"). */
export const NON_FINITE_ERROR = 'NonFiniteError';

export interface ReplicaInit {
  /** Place among the replicas of this process (which share its memory). */
  rank: number;
  replicas: number;
  /**
   * Place in the world: this process's first replica is world replica `replicaOffset`, of
   * `replicas` in all processes. Data slices and random seeds follow the world rank.
   */
  world: { replicaOffset: number; replicas: number };
  backend: BackendName;
  model: ModelSpec;
  seed: number;
  loss: LossSpec;
  metrics: MetricName[];
  optimizer: OptimizerSpec;
  batchSize: number;
  /** Global batches per optimizer update (training.accumulateSteps). */
  accumulateSteps: number;
  /** Keras's class_weight (training.classWeight), class index to weight. */
  classWeight?: ClassWeight;
  shuffle: boolean;
  /** The coordinator's layout; the replica checks that its model matches it. */
  layout: ParamEntry[];
  /** The coordinator's layout of the non-trainable weights (param-layout.ts). */
  nonTrainableLayout: ParamEntry[];
  buffers: SharedTrainingBuffers;
  datasets: Partial<Record<DatasetRole, SharedDataset>>;
  reduceScatter: ReduceScatterKind;
  /** Deadline of every wait inside a step. */
  timeoutMs: number;
  /** How long a wait polls before it sleeps (0 when replicas outnumber cores). */
  spinMicros: number;
  /** Test-only fault injection. */
  faults?: { throwAtStep?: number; throwAtGlobalStep?: number; hangAtStep?: number; nanAtStep?: number; exitAtStep?: number; failInit?: boolean };
  /** BatchNormalization uses the global batch's statistics (parallel.syncBatchNorm). */
  syncBatchNorm: boolean;
  /** What a step with a non-finite loss or gradient does. */
  nonFinite: 'stop' | 'skip';
  /** Record the spans of every step for a trace (span-recorder.ts). */
  trace?: boolean;
}

export type DatasetRole = 'train' | 'validation' | 'test';

export interface StepsJob {
  epoch: number;
  /** Global batches [fromStep, toStep) of the epoch. */
  fromStep: number;
  toStep: number;
  /** Optimizer updates applied before fromStep in the whole run. */
  updatesBefore: number;
  /** Reduce-on-plateau's scale and floor on the learning rate (none: the rate as configured). */
  rateAdjustment?: RateAdjustment;
}

/** Seconds spent in each phase of the steps, summed over the steps of a job. */
export interface PhaseTimes {
  gather: number;
  copyIn: number;
  compute: number;
  copyOut: number;
  reduceScatter: number;
  update: number;
  barrier: number;
}

export function zeroPhaseTimes(): PhaseTimes {
  return { gather: 0, copyIn: 0, compute: 0, copyOut: 0, reduceScatter: 0, update: 0, barrier: 0 };
}

export interface StepsResult {
  /** Samples, loss and metrics of the steps that were applied (skipped steps leave them out). */
  samples: number;
  lossSum: number;
  metricSums: number[];
  /** Updates skipped for a non-finite loss or gradient (with accumulation, each covers its batches). */
  skippedSteps: number;
  times: PhaseTimes;
  /** While tracing: the spans of these steps. */
  spans?: RecordedSpans;
}

export interface EvaluationJob {
  dataset: DatasetRole;
  batchSize: number;
}

export interface EvaluationSums {
  samples: number;
  lossSum: number;
  metricSums: number[];
}

export interface PredictionJob {
  inputs: SharedDataset;
  /** Float32 output buffer of inputs.size * outputSize values. */
  outputs: SharedArrayBuffer;
  outputSize: number;
  batchSize: number;
}

export interface ReplicaApi {
  init(init: ReplicaInit): Promise<{ backend: string }>;
  runSteps(job: StepsJob): StepsResult;
  evaluate(job: EvaluationJob): EvaluationSums;
  predict(job: PredictionJob): number;
  /** Live TensorFlow.js tensors of this replica's thread (a leak shows here). */
  tensorCount(): number;
  close(): void;
}
