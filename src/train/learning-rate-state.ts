/**
 * The coordinator's side of the learning rate: the rate of the next update (for progress, the
 * epoch records and checkpoints) and reduce-on-plateau's state, which changes at epoch ends and
 * reaches the replicas as the `rateAdjustment` of each StepsJob. Replicas compute each update's
 * rate from the same schedule, update count and adjustment (optim/learning-rate.ts).
 */
import type { RunConfig } from '../config/schema.js';
import type { CheckpointLearningRate } from '../checkpoint/state.js';
import { UserError } from '../errors.js';
import { LearningRate, NO_ADJUSTMENT, type RateAdjustment } from '../optim/learning-rate.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import { ReduceLrOnPlateau, type PlateauState } from '../optim/reduce-lr-on-plateau.js';
import { epochLogs } from './callbacks/callback-list.js';
import type { EpochEvent } from './events.js';

export class LearningRateState {
  private readonly rate: LearningRate;
  private plateau: ReduceLrOnPlateau | undefined;

  /**
   * `updatesAfter` turns the run's count of global batches into the updates applied (they
   * differ with gradient accumulation); every `batches` argument below is such a count.
   */
  constructor(
    private readonly config: RunConfig,
    optimizer: ShardOptimizer,
    private readonly updatesAfter: (batches: number) => number = (batches) => batches,
  ) {
    this.rate = LearningRate.of(config.optimizer.learningRate, optimizer.hyperParameters.learningRate as number);
    const spec = config.training.reduceLrOnPlateau;
    this.plateau = spec && new ReduceLrOnPlateau(spec);
  }

  get adjustment(): RateAdjustment {
    return this.plateau?.adjustment ?? NO_ADJUSTMENT;
  }

  /** The rate of the update that follows `batches` global batches. */
  at(batches: number): number {
    return this.rate.at(this.updatesAfter(batches), this.adjustment);
  }

  /**
   * Reduce-on-plateau's look at a finished epoch (the hook of the epoch loop); `updates` are the
   * updates applied so far. Returns the reduced rate when it reduced it.
   */
  onEpochEnd(event: EpochEvent, updates: number): number | undefined {
    if (!this.plateau) return undefined;
    const value = epochLogs(event)[this.plateau.spec.monitor];
    // A metric the epoch lacks (NaN loss aside) was refused at start-up (checkPlateauMonitor).
    if (value === undefined) return undefined;
    return this.plateau.onEpochEnd(value, this.at(updates)) ? this.at(updates) : undefined;
  }

  capture(updates: number): CheckpointLearningRate {
    return { current: this.at(updates), plateau: this.plateau && { ...this.plateau.state } };
  }

  /** Takes over a checkpoint's plateau state (none in older checkpoints: a fresh start). */
  restore(saved: CheckpointLearningRate | undefined): void {
    const spec = this.config.training.reduceLrOnPlateau;
    this.plateau = spec && new ReduceLrOnPlateau(spec, saved?.plateau);
  }

  /** For the processes of a world, which all continue from rank 0's state. */
  get plateauState(): PlateauState | undefined {
    return this.plateau && { ...this.plateau.state };
  }

  set plateauState(state: PlateauState | undefined) {
    this.restore({ current: 0, plateau: state });
  }
}

/** training.reduceLrOnPlateau.monitor must name an epoch metric this run reports; checked before any step. */
export function checkPlateauMonitor(config: RunConfig, validates: boolean): void {
  const name = config.training.reduceLrOnPlateau?.monitor;
  if (!name) return;
  const names = ['loss', ...config.metrics];
  const known = validates ? [...names, ...names.map((n) => `val_${n}`)] : names;
  if (!known.includes(name)) {
    const hint = name.startsWith('val_') && !validates ? ' (this run has no validation data: set training.validationSplit or validateOnTest)' : '';
    throw new UserError(`training.reduceLrOnPlateau.monitor: expected an epoch metric of this run (${known.join(', ')}), found "${name}"${hint}`);
  }
}
