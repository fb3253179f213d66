/**
 * Early stopping (training.earlyStopping), written on the callback API as Keras's EarlyStopping:
 * after each epoch, the monitored value improves when it beats the best so far by more than
 * minDelta (lower in "min" mode, higher in "max"); `wait` counts the epochs since the last
 * improvement, and once it reaches `patience` (never after the first epoch) training stops.
 * With restoreBestWeights the run ends with the weights of the best epoch (also when it trains
 * its last epoch without stopping early, as Keras 3 does); a fit() that only pauses keeps the
 * current weights, so the run can continue.
 *
 * Its state (best value and epoch, wait, the epoch it stopped at, the best weights) is in every
 * checkpoint: a resumed run continues exactly, and a run it stopped stays stopped (a later fit()
 * or a resume returns at once).
 */
import type { CheckpointTensor } from '../../checkpoint/state.js';
import type { CallbackRun, CallbackState, Logs, TrainingCallback } from './callback.js';
import { monitorMode, type EarlyStoppingConfig } from './early-stopping-config.js';

export const EARLY_STOPPING_STATE = 'earlyStopping';
const BEST_WEIGHTS = 'bestWeights';

export class EarlyStopping implements TrainingCallback {
  readonly name = EARLY_STOPPING_STATE;
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  readonly patience: number;
  readonly minDelta: number;
  readonly restoreBestWeights: boolean;
  /** The best value so far (Infinity, or -Infinity in max mode, before the first epoch). */
  best: number;
  /** The epoch (from 1) of the best value; 0 before the first. */
  bestEpoch = 0;
  /** Epochs since the best. */
  wait = 0;
  /** The epoch (from 1) after which it stopped training; 0 while it has not. */
  stoppedEpoch = 0;
  /** The best weights were put back (once). */
  restored = false;
  private bestWeights: Float32Array | undefined;

  constructor(config: Partial<EarlyStoppingConfig> = {}) {
    this.monitor = config.monitor ?? 'val_loss';
    this.mode = monitorMode(this.monitor, config.mode);
    this.patience = config.patience ?? 0;
    this.minDelta = Math.abs(config.minDelta ?? 0);
    this.restoreBestWeights = config.restoreBestWeights ?? false;
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  get reason(): string {
    return `early stopping: ${this.monitor} did not improve for ${this.wait} epoch${this.wait === 1 ? '' : 's'} after epoch ${this.bestEpoch} (${this.best})`;
  }

  onTrainBegin(_logs: Logs, run: CallbackRun): void {
    // A run it stopped is over: a later fit(), or a resume from its checkpoint, trains nothing.
    if (this.stoppedEpoch > 0) run.stopTraining(this.reason);
  }

  onEpochEnd(epoch: number, logs: Logs, run: CallbackRun): void {
    const current = logs[this.monitor];
    if (current === undefined) throw new Error(`training.earlyStopping.monitor: "${this.monitor}" is not among this epoch's values (${Object.keys(logs).join(', ')})`);
    if (this.restoreBestWeights && this.bestWeights === undefined) {
      this.bestWeights = run.params();
      this.bestEpoch = epoch + 1;
    }
    this.wait++;
    if (this.improves(current)) {
      this.best = current;
      this.bestEpoch = epoch + 1;
      if (this.restoreBestWeights) this.bestWeights = run.params(); // a new array: a checkpoint being written may hold the old one
      this.wait = 0;
      return;
    }
    if (this.wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch + 1;
      run.stopTraining(this.reason);
    }
  }

  onTrainEnd(_logs: Logs, run: CallbackRun): void {
    if (!this.restoreBestWeights || this.restored || this.bestWeights === undefined) return;
    if (this.stoppedEpoch === 0 && !run.finished) return; // paused: training goes on from here
    run.setParams(this.bestWeights);
    this.restored = true;
  }

  private improves(value: number): boolean {
    return this.mode === 'min' ? value + this.minDelta < this.best : value - this.minDelta > this.best;
  }

  saveState(): CallbackState {
    const tensors: CheckpointTensor[] = this.bestWeights ? [{ name: BEST_WEIGHTS, shape: [this.bestWeights.length], values: this.bestWeights }] : [];
    return {
      state: { monitor: this.monitor, mode: this.mode, best: this.best, bestEpoch: this.bestEpoch, wait: this.wait, stoppedEpoch: this.stoppedEpoch, restored: this.restored },
      tensors,
    };
  }

  /** Refuses a state of another monitor or mode (its best value means something else). */
  loadState(saved: CallbackState): void {
    const s = saved.state;
    const expect = (ok: boolean, field: string, expected: string) => {
      if (!ok) throw new Error(`${field}: expected ${expected}, found ${JSON.stringify(s[field]) ?? 'nothing'}`);
    };
    const count = (field: string) => expect(Number.isSafeInteger(s[field]) && (s[field] as number) >= 0, field, 'an integer >= 0');
    expect(s.monitor === this.monitor, 'monitor', `"${this.monitor}" (training.earlyStopping.monitor)`);
    expect(s.mode === this.mode, 'mode', `"${this.mode}" (training.earlyStopping.mode)`);
    expect(typeof s.best === 'number' && !Number.isNaN(s.best), 'best', 'a number');
    count('bestEpoch');
    count('wait');
    count('stoppedEpoch');
    expect(typeof s.restored === 'boolean', 'restored', 'true or false');
    const weights = saved.tensors.find((t) => t.name === BEST_WEIGHTS);
    if (this.restoreBestWeights) expect(weights !== undefined || s.bestEpoch === 0, BEST_WEIGHTS, 'the best weights (training.earlyStopping.restoreBestWeights is on)');
    this.best = s.best as number;
    this.bestEpoch = s.bestEpoch as number;
    this.wait = s.wait as number;
    this.stoppedEpoch = s.stoppedEpoch as number;
    this.restored = s.restored as boolean;
    this.bestWeights = this.restoreBestWeights ? weights?.values : undefined;
  }
}
