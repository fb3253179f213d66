/** What a training run reports while it runs, for progress bars, logs and callers. */
import type { PhaseTimes } from './replica-protocol.js';

export type MetricValues = Record<string, number>;

export interface StartEvent {
  type: 'start';
  name: string;
  workers: number;
  backend: string;
  epochs: number;
  stepsPerEpoch: number;
  trainSamples: number;
  validationSamples: number;
  parameters: number;
}

export interface ProgressEvent {
  type: 'progress';
  epoch: number;
  step: number;
  steps: number;
  samples: number;
  loss: number;
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
  validation?: { loss: number; metrics: MetricValues };
  /** Seconds per phase, summed over steps, averaged over replicas. */
  phaseTimes: PhaseTimes;
  /** Steps skipped for a non-finite loss or gradient (training.nonFinite "skip"). */
  skippedSteps: number;
}

export type TrainingEvent = StartEvent | ProgressEvent | EpochEvent;
