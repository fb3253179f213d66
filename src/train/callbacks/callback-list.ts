/**
 * Runs a run's callbacks in order at each hook, collects a stop one of them asks for, and saves
 * and loads their checkpointed states.
 */
import { UserError } from '../../errors.js';
import type { EpochEvent } from '../events.js';
import type { CallbackRun, CallbackState, Logs, TrainingCallback } from './callback.js';

/** A callback's saved state as a checkpoint holds it. */
export interface SavedCallbackState extends CallbackState {
  name: string;
}

/** An epoch's Keras-style logs: loss, metrics, and val_loss, val_<metric> after validation. */
export function epochLogs(event: Pick<EpochEvent, 'loss' | 'metrics' | 'validation'>): Logs {
  const logs: Logs = { loss: event.loss, ...event.metrics };
  if (event.validation) {
    logs.val_loss = event.validation.loss;
    for (const [name, value] of Object.entries(event.validation.metrics)) logs[`val_${name}`] = value;
  }
  return logs;
}

type Hook = 'onTrainBegin' | 'onEpochBegin' | 'onBatchEnd' | 'onEpochEnd' | 'onTrainEnd';

export class CallbackList {
  constructor(readonly callbacks: readonly TrainingCallback[]) {
    const names = new Set<string>();
    callbacks.forEach((callback, i) => {
      if (callback.saveState && !callback.name) throw new UserError(`callbacks[${i}]: a callback with saveState needs a name (its state's name in checkpoints)`);
      if (callback.name === undefined) return;
      if (names.has(callback.name)) throw new UserError(`callbacks[${i}]: the name "${callback.name}" is taken by another callback (names key their states in checkpoints)`);
      names.add(callback.name);
    });
  }

  /** Whether any callback has this hook (the trainer skips building logs otherwise). */
  has(hook: Hook): boolean {
    return this.callbacks.some((c) => c[hook] !== undefined);
  }

  async trainBegin(logs: Logs, run: CallbackRun): Promise<void> {
    for (const c of this.callbacks) await c.onTrainBegin?.(logs, run);
  }

  async epochBegin(epoch: number, logs: Logs, run: CallbackRun): Promise<void> {
    for (const c of this.callbacks) await c.onEpochBegin?.(epoch, logs, run);
  }

  async batchEnd(batch: number, logs: Logs, run: CallbackRun): Promise<void> {
    for (const c of this.callbacks) await c.onBatchEnd?.(batch, logs, run);
  }

  async epochEnd(epoch: number, logs: Logs, run: CallbackRun): Promise<void> {
    for (const c of this.callbacks) await c.onEpochEnd?.(epoch, logs, run);
  }

  async trainEnd(logs: Logs, run: CallbackRun): Promise<void> {
    for (const c of this.callbacks) await c.onTrainEnd?.(logs, run);
  }

  /** Every named callback's state, for a checkpoint. */
  saveStates(): SavedCallbackState[] {
    return this.callbacks.flatMap((c) => (c.saveState ? [{ name: c.name!, ...c.saveState() }] : []));
  }

  /**
   * Gives each callback its state from a checkpoint. A state no callback of this run takes is
   * left alone (a run resumed without the callback); a callback with no saved state starts
   * afresh (a checkpoint written without it). `file` names the checkpoint in errors.
   */
  loadStates(saved: readonly SavedCallbackState[] | undefined, file: string): void {
    for (const c of this.callbacks) {
      const state = c.loadState && saved?.find((s) => s.name === c.name);
      if (!state) continue;
      try {
        c.loadState!(state);
      } catch (error) {
        throw new UserError(`cannot resume from ${file}: callback state "${c.name}": ${(error as Error).message}`, { cause: error });
      }
    }
  }
}
