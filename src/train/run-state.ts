/**
 * Where a run stands (epoch, step, updates, the sums of the epoch in progress, the history) and
 * its capture into, and restore from, a CheckpointState together with the shared parameters and
 * optimizer state. A capture is the one copy out of shared memory a checkpoint costs.
 */
import type { RunConfig } from '../config/schema.js';
import type { DataInfo } from '../data/data-info.js';
import type { CheckpointState } from '../checkpoint/state.js';
import { UserError } from '../errors.js';
import type { ParamLayout } from '../model/param-layout.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import { VERSION } from '../version.js';
import type { EpochEvent } from './events.js';
import { zeroPhaseTimes, type EvaluationSums, type PhaseTimes } from './replica-protocol.js';
import type { TrainingViews } from './shared-state.js';

/** Marks the in-progress epoch's sums in a checkpoint's history. */
const PARTIAL_EPOCH = 'partial-epoch';

/**
 * Epoch records a checkpoint file keeps: the last one. Resuming needs none (the metrics log,
 * metrics.jsonl, holds every epoch, and a resumed run appends to it), while a history growing
 * with the run made every checkpoint of a run of many short epochs larger than the one before
 * (450 KB for xor's 1000 epochs of a 13-parameter model).
 */
export const CHECKPOINT_HISTORY_RECORDS = 1;

/** Sums of the epoch in progress: a checkpoint between steps carries them on. */
export interface EpochProgress {
  skippedSteps: number;
  samples: number;
  lossSum: number;
  metricSums: number[];
  seconds: number;
  times: PhaseTimes[];
}

export class RunState {
  readonly history: EpochEvent[] = [];
  /** The next step to run is step `stepInEpoch` of epoch `epoch` (both from 0). */
  readonly position = { epoch: 0, stepInEpoch: 0 };
  /** Optimizer updates applied so far in the whole run. */
  updates = 0;
  samplesSeen = 0;
  epochProgress: EpochProgress | undefined;

  constructor(private readonly metricCount: number) {}

  freshEpochProgress(): EpochProgress {
    return { skippedSteps: 0, samples: 0, lossSum: 0, metricSums: new Array<number>(this.metricCount).fill(0), seconds: 0, times: [] };
  }

  /**
   * The run's whole state with copies of the shared parameters and optimizer state, and the
   * last `historyRecords` epoch records (all by default: a recovery point keeps them all).
   */
  capture(
    run: { config: RunConfig; topology: object; layout: ParamLayout; optimizer: ShardOptimizer; replicas: number; dataInfo?: DataInfo | undefined },
    views: TrainingViews,
    historyRecords = Infinity,
  ): CheckpointState {
    const { config, layout, optimizer } = run;
    const progress = this.epochProgress;
    // Copies of the sums' arrays: the checkpoint is encoded later, while training goes on adding to
    // them. The segments' phase times are kept as their sum, all the epoch event needs of them.
    const partial =
      progress && this.position.stepInEpoch > 0
        ? [{ event: PARTIAL_EPOCH, epoch: this.position.epoch + 1, ...progress, metricSums: [...progress.metricSums], times: progress.times.length > 0 ? [sumTimes(progress.times)] : [] }]
        : [];
    return {
      ringtrainVersion: VERSION,
      config,
      modelTopology: run.topology,
      layout: layout.entries.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset, size: e.size })),
      params: views.params.slice(),
      ...(layout.nonTrainable.length > 0
        ? { nonTrainableLayout: layout.nonTrainable.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset, size: e.size })), nonTrainable: views.nonTrainable.slice() }
        : {}),
      optimizer: {
        name: optimizer.name,
        hyperParameters: { ...optimizer.hyperParameters },
        step: this.updates,
        state: optimizer.stateNames.map((name, i) => ({ name, shape: [layout.length], values: views.optimizerState[i]!.slice() })),
      },
      position: { epoch: this.position.epoch, stepInEpoch: this.position.stepInEpoch, globalStep: this.updates, samplesSeen: this.samplesSeen },
      sampler: { seed: config.training.seed, shuffle: config.training.shuffle },
      // Random layers are seeded from (seed, epoch, step, rank): the position is the RNG state.
      rngStates: [],
      history: [...(historyRecords >= this.history.length ? this.history : this.history.slice(this.history.length - historyRecords)), ...partial],
      replicas: run.replicas,
      createdAt: new Date().toISOString(),
      ...(run.dataInfo === undefined ? {} : { dataInfo: run.dataInfo }),
    };
  }

  /** Takes over a checkpoint's parameters, optimizer state, position and history. */
  restore(state: CheckpointState, optimizer: ShardOptimizer, views: TrainingViews): void {
    views.params.set(state.params);
    // resume.ts refuses a checkpoint whose non-trainable layout differs from the model's.
    if (state.nonTrainable) views.nonTrainable.set(state.nonTrainable);
    optimizer.stateNames.forEach((name, i) => {
      const saved = state.optimizer.state.find((t) => t.name === name);
      if (!saved) throw new UserError(`the checkpoint has no optimizer state "${name}"`);
      views.optimizerState[i]!.set(saved.values);
    });
    this.updates = state.position.globalStep;
    this.samplesSeen = state.position.samplesSeen;
    this.position.epoch = state.position.epoch;
    this.position.stepInEpoch = state.position.stepInEpoch;
    this.history.length = 0;
    this.epochProgress = undefined;
    for (const record of state.history as (EpochEvent | ({ event: string } & EpochProgress))[]) {
      if ('event' in record && record.event === PARTIAL_EPOCH) {
        const { skippedSteps = 0, samples, lossSum, metricSums, seconds, times } = record as EpochProgress;
        this.epochProgress = { skippedSteps, samples, lossSum, metricSums, seconds, times };
      } else {
        this.history.push(record as EpochEvent);
      }
    }
  }
}

export function sumResults(parts: readonly EvaluationSums[]): EvaluationSums {
  const metricSums = parts[0]!.metricSums.map(() => 0);
  let samples = 0;
  let lossSum = 0;
  for (const part of parts) {
    samples += part.samples;
    lossSum += part.lossSum;
    part.metricSums.forEach((v, i) => (metricSums[i]! += v));
  }
  return { samples, lossSum, metricSums };
}

/** Phase times summed over `times`, each divided by `divisor` (the count, for an average). */
export function sumTimes(times: readonly PhaseTimes[], divisor = 1): PhaseTimes {
  const total = zeroPhaseTimes();
  for (const t of times) for (const key of Object.keys(total) as (keyof PhaseTimes)[]) total[key] += t[key] / divisor;
  return total;
}

/** Each replica's phase times summed over segments (`segments[k][r]`: replica r in segment k; a recovery may change the count). */
export function sumTimesPerReplica(segments: readonly (readonly PhaseTimes[])[]): PhaseTimes[] {
  const replicas = Math.max(0, ...segments.map((s) => s.length));
  return Array.from({ length: replicas }, (_, r) => sumTimes(segments.flatMap((s) => (s[r] ? [s[r]] : []))));
}

export function averageTimes(times: readonly PhaseTimes[]): PhaseTimes {
  return sumTimes(times, times.length);
}
