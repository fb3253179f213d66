/**
 * The library's callback API, in the shape of tfjs-layers' callbacks (`onTrainBegin`,
 * `onEpochBegin`, `onBatchEnd`, `onEpochEnd`, `onTrainEnd`, each with Keras-style logs), given to
 * a run as `TrainerOptions.callbacks`. The coordinator calls them at the granularity it sees:
 * `onBatchEnd` once per segment of steps the replicas run between two meetings (up to 64 global
 * batches, fewer at checkpoint and epoch boundaries), not once per batch.
 *
 * A callback stops training with `run.stopTraining(reason)` (tfjs: `model.stopTraining = true`):
 * fit() returns at the next step boundary, with a checkpoint there when checkpoints are on. A
 * callback that keeps state a resumed run needs (early stopping's best value and patience count)
 * has a `name` and `saveState`/`loadState`: its state goes into every checkpoint.
 *
 * With several processes every process runs the callbacks on the same logs (the world's sums):
 * a callback that stops training must decide from the logs alone, as early stopping does, so
 * that every process stops at the same step boundary.
 */
import type { CheckpointTensor } from '../../checkpoint/state.js';

/** Keras-style logs: `loss`, each metric by name, and after validation `val_loss`, `val_<metric>`. */
export type Logs = Record<string, number>;

/** What a callback may see and do of the run that calls it. */
export interface CallbackRun {
  /** The epochs the run trains in all (config.training.epochs). */
  readonly epochs: number;
  /** The run has trained all its epochs (so far as onTrainEnd is concerned: the run is over). */
  readonly finished: boolean;
  /** Ends the fit() running at the next step boundary (after this hook); `reason` is reported. */
  stopTraining(reason: string): void;
  /** A copy of the current flat parameters. */
  params(): Float32Array;
  /** Replaces the flat parameters (between steps; the optimizer state stays). */
  setParams(values: Float32Array): void;
}

/** A callback's state in a checkpoint: JSON (non-finite numbers allowed) and float32 tensors. */
export interface CallbackState {
  state: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

export interface TrainingCallback {
  /** Names the callback's state in checkpoints; needed with saveState. */
  readonly name?: string;
  /** At the start of each fit(); logs: `epoch` and `step` (from 0) it starts at. */
  onTrainBegin?(logs: Logs, run: CallbackRun): void | Promise<void>;
  /** Before the first step fit() runs of epoch `epoch` (from 0); logs: `step` it starts at (0 unless resumed mid-epoch). */
  onEpochBegin?(epoch: number, logs: Logs, run: CallbackRun): void | Promise<void>;
  /**
   * After each segment of steps; `batch` is the epoch's last step run (from 0); logs: the
   * segment's mean `loss` and metrics, `size` (its samples) and `steps` (its global batches).
   */
  onBatchEnd?(batch: number, logs: Logs, run: CallbackRun): void | Promise<void>;
  /** After epoch `epoch` (from 0) and its validation; logs: the epoch's loss, metrics and val_ values. */
  onEpochEnd?(epoch: number, logs: Logs, run: CallbackRun): void | Promise<void>;
  /** When fit() returns (finished, paused by stop(), or stopped by a callback); logs: `epoch` and `step` it ends at. */
  onTrainEnd?(logs: Logs, run: CallbackRun): void | Promise<void>;
  /** The state a resumed run needs (written into every checkpoint). */
  saveState?(): CallbackState;
  /** Takes over a checkpoint's state; throws an Error saying what is wrong with it. */
  loadState?(saved: CallbackState): void;
}
