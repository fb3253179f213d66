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
  /** The learning rate of the step running (optimizer.learningRate's schedule, reduce-on-plateau's scale). */
  lr: number;
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
  /** Seconds per phase for each of this process's replicas, summed over the steps this fit() ran of the epoch (the dashboard's breakdown of a step). */
  replicaPhaseTimes: PhaseTimes[];
  /** Steps skipped for a non-finite loss or gradient (training.nonFinite "skip"). */
  skippedSteps: number;
  /**
   * The learning rate at the epoch's end: the next update's, before reduce-on-plateau looks at
   * this epoch (as Keras logs learning_rate). Absent in records of checkpoints older than it.
   */
  lr: number;
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

/**
 * Every `ReportEventOptions.stepsEvery` global steps (when asked): the epoch's running loss and
 * metrics exactly at that step (segments of steps end there), for step-level curves.
 */
export interface StepsEvent {
  type: 'steps';
  epoch: number;
  /** Steps of the epoch done, of `steps`. */
  step: number;
  steps: number;
  /** Optimizer updates of the whole run so far. */
  globalStep: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  loss: number;
  metrics: MetricValues;
  /** The epoch's phase times so far (as EpochEvent's). */
  phaseTimes: PhaseTimes;
}

/** After each epoch event (when asked): the parameters, weight by weight. */
export interface WeightsEvent {
  type: 'weights';
  epoch: number;
  globalStep: number;
  weights: { name: string; shape: number[]; values: Float32Array }[];
}

/** A span of the run's timeline: Unix time in milliseconds. */
export interface TraceSpan {
  name: string;
  start: number;
  end: number;
  args?: Record<string, string | number>;
}

/**
 * Spans of the timeline (when asked): a replica's (its world rank) for each segment of steps,
 * or this process's coordinator's (`replica` absent; `lane` "checkpoint writes" for the
 * writes that run beside training).
 */
export interface TraceEvent {
  type: 'trace';
  replica?: number;
  lane?: string;
  spans: TraceSpan[];
}

/** The extra events a report sink may ask the trainer for (all off by default). */
export interface ReportEventOptions {
  /** Steps events every this many global steps (0: none). Every process of a world must ask the same. */
  stepsEvery?: number;
  weights?: boolean;
  trace?: boolean;
}

export type TrainingEvent = StartEvent | ProgressEvent | EpochEvent | RecoveryEvent | StepsEvent | WeightsEvent | TraceEvent;
