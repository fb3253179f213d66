/** What a training run reports while it runs, for progress bars, logs and callers. */
import type { PhaseTimes } from './replica-protocol.js';

export type MetricValues = Record<string, number>;

/** A loss and the metrics over some data: an epoch's training or validation figures. */
export interface LossAndMetrics {
  loss: number;
  metrics: MetricValues;
}

/** Loss and metrics over `samples` samples: Trainer.evaluate, `ringtrain evaluate`, a run's summary. */
export interface Evaluation extends LossAndMetrics {
  samples: number;
}

export interface StartEvent {
  type: 'start';
  name: string;
  /** Replicas (threads) of this process. */
  workers: number;
  /** Processes in the world, and their replicas together. */
  processes: number;
  worldReplicas: number;
  backend: string;
  epochs: number;
  stepsPerEpoch: number;
  trainSamples: number;
  validationSamples: number;
  parameters: number;
}

/**
 * While an epoch runs: its running loss and metrics (means over the epoch's samples so far,
 * computed as the epoch event's are). The last one of an epoch (step === steps) carries the
 * epoch event's values.
 */
export interface ProgressEvent {
  type: 'progress';
  epoch: number;
  step: number;
  steps: number;
  samples: number;
  loss: number;
  metrics: MetricValues;
  samplesPerSec: number;
}

export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  epochs: number;
  steps: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  loss: number;
  metrics: MetricValues;
  validation?: LossAndMetrics;
  /** Seconds per phase, summed over steps, averaged over replicas. */
  phaseTimes: PhaseTimes;
  /** Steps skipped for a non-finite loss or gradient (training.nonFinite "skip"). */
  skippedSteps: number;
}

/** Replicas failed and a fresh group took over from the last consistent state. */
export interface RecoveryEvent {
  type: 'recovery';
  attempt: number;
  of: number;
  error: string;
  /** The steps [fromStep, toStep) of the epoch that were running when the failure was seen. */
  failedDuring: { epoch: number; fromStep: number; toStep: number };
  resumedAt: { epoch: number; step: number };
  /** Replicas after the recovery (fewer when some could not be started again). */
  replicas: number;
  /** From the failure being seen to the new replicas being ready. */
  seconds: number;
}

export type TrainingEvent = StartEvent | ProgressEvent | EpochEvent | RecoveryEvent;
