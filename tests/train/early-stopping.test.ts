/**
 * EarlyStopping on its own (no trainer): its decisions against sequences worked out by hand
 * from Keras's rule (improvement: beats the best by more than minDelta; stop once `wait` reaches
 * `patience`, never after the first epoch), best weights, and a state saved and loaded midway
 * continuing exactly.
 */
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import type { CallbackRun } from '../../src/train/callbacks/callback.js';
import { EarlyStopping } from '../../src/train/callbacks/early-stopping.js';

/** A stand-in for the trainer: parameters that change every epoch, and the stop asked for. */
function fakeRun(epochs = 100) {
  const run = {
    epochs,
    finished: false,
    stoppedWith: undefined as string | undefined,
    current: new Float32Array([0, 0]),
    stopTraining(reason: string) {
      run.stoppedWith ??= reason;
    },
    params: () => run.current.slice(),
    setParams(values: Float32Array) {
      run.current = values.slice();
    },
  };
  return run satisfies CallbackRun;
}

/** Feeds `values` as the monitored metric of epochs `from`...; params = [epoch, value] at each epoch end. Returns the epoch (from 1) it stopped after. */
function feed(es: EarlyStopping, run: ReturnType<typeof fakeRun>, monitor: string, values: number[], from = 0): number | undefined {
  for (let i = 0; i < values.length; i++) {
    const epoch = from + i;
    run.current = new Float32Array([epoch + 1, values[i]!]);
    es.onEpochEnd(epoch, { [monitor]: values[i]!, other: 7 }, run);
    if (run.stoppedWith) return epoch + 1;
  }
  return undefined;
}

describe('EarlyStopping', () => {
  it('stops once the loss has not improved by more than minDelta for `patience` epochs', () => {
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 2, minDelta: 0.01 });
    const run = fakeRun();
    // best 1.0 (e1), 0.9 (e2); 0.895 is within minDelta: wait 1 (e3); 0.85 improves (e4);
    // 0.845 wait 1 (e5); 0.86 wait 2 (e6): stop after epoch 6.
    expect(feed(es, run, 'val_loss', [1.0, 0.9, 0.895, 0.85, 0.845, 0.86, 0.1])).toBe(6);
    expect(es).toMatchObject({ best: 0.85, bestEpoch: 4, wait: 2, stoppedEpoch: 6 });
    expect(run.stoppedWith).toBe('early stopping: val_loss did not improve for 2 epochs after epoch 4 (0.85)');
  });

  it('in max mode (auto for an accuracy) higher is better; patience 0 stops at the first epoch without improvement, but never after the first', () => {
    const es = new EarlyStopping({ monitor: 'val_accuracy' });
    expect(es.mode).toBe('max');
    const run = fakeRun();
    expect(feed(es, run, 'val_accuracy', [0.5, 0.6, 0.6, 0.9])).toBe(3);
    const first = new EarlyStopping({ monitor: 'loss', minDelta: 10 });
    const run2 = fakeRun();
    // epoch 1 improves on Infinity; epoch 2 does not by more than 10: patience 0 stops there
    expect(feed(first, run2, 'loss', [5, 4, 3])).toBe(2);
    expect(new EarlyStopping({ monitor: 'val_acc', mode: 'min' }).mode).toBe('min');
  });

  it('restoreBestWeights: the run ends with the best epoch`s parameters, only when it is over; a pause keeps the current ones', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 1, restoreBestWeights: true });
    const run = fakeRun(10);
    expect(feed(es, run, 'loss', [3, 2, 2.5, 1])).toBe(3);
    es.onTrainEnd({}, run);
    expect([...run.current]).toEqual([2, 2]); // epoch 2's parameters
    // Not stopped and not finished (a paused fit): nothing restored.
    const paused = new EarlyStopping({ monitor: 'loss', patience: 5, restoreBestWeights: true });
    const run2 = fakeRun(10);
    feed(paused, run2, 'loss', [3, 2, 2.5]);
    paused.onTrainEnd({}, run2);
    expect([...run2.current]).toEqual([3, 2.5]);
    // The run trained all its epochs: restored (as Keras 3 does).
    run2.finished = true;
    paused.onTrainEnd({}, run2);
    expect([...run2.current]).toEqual([2, 2]);
  });

  it('a state saved midway and loaded into a new instance continues exactly; a stopped run stays stopped', () => {
    const values = [1.0, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77, 0.5];
    const whole = new EarlyStopping({ monitor: 'val_loss', patience: 3, restoreBestWeights: true });
    const wholeRun = fakeRun();
    const stoppedAt = feed(whole, wholeRun, 'val_loss', values);
    expect(stoppedAt).toBe(7);
    for (let k = 1; k < 7; k++) {
      const first = new EarlyStopping({ monitor: 'val_loss', patience: 3, restoreBestWeights: true });
      const run = fakeRun();
      expect(feed(first, run, 'val_loss', values.slice(0, k))).toBeUndefined();
      // Through JSON, as a checkpoint stores it (Infinity tagged by the format; here at k >= 1 it is finite).
      const saved = first.saveState();
      const second = new EarlyStopping({ monitor: 'val_loss', patience: 3, restoreBestWeights: true });
      second.loadState({ state: JSON.parse(JSON.stringify(saved.state)) as Record<string, unknown>, tensors: saved.tensors.map((t) => ({ ...t, values: t.values.slice() })) });
      const run2 = fakeRun();
      expect(feed(second, run2, 'val_loss', values.slice(k), k)).toBe(stoppedAt);
      expect(second.saveState().state).toEqual(whole.saveState().state);
      second.onTrainEnd({}, run2);
      expect([...run2.current]).toEqual([4, Math.fround(0.7)]);
    }
    // A later fit (or a resume) of the run it stopped trains nothing.
    const again = fakeRun();
    whole.onTrainBegin({}, again);
    expect(again.stoppedWith).toMatch(/^early stopping: val_loss did not improve for 3 epochs after epoch 4/);
  });

  it('refuses a state of another monitor or mode, or a damaged one, saying what it expected', () => {
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 2 });
    const state = { monitor: 'loss', mode: 'min', best: 1, bestEpoch: 1, wait: 0, stoppedEpoch: 0, restored: false };
    expect(() => es.loadState({ state, tensors: [] })).toThrow('monitor: expected "val_loss" (training.earlyStopping.monitor), found "loss"');
    expect(() => es.loadState({ state: { ...state, monitor: 'val_loss', wait: -1 }, tensors: [] })).toThrow('wait: expected an integer >= 0, found -1');
    const restoring = new EarlyStopping({ monitor: 'val_loss', restoreBestWeights: true });
    expect(() => restoring.loadState({ state: { ...state, monitor: 'val_loss' }, tensors: [] })).toThrow('bestWeights: expected the best weights (training.earlyStopping.restoreBestWeights is on)');
  });

  it('names the monitored value when an epoch does not report it', () => {
    const es = new EarlyStopping({ monitor: 'val_loss' });
    expect(() => es.onEpochEnd(0, { loss: 1 }, fakeRun())).toThrow('training.earlyStopping.monitor: "val_loss" is not among this epoch\'s values (loss)');
  });

  it('training.earlyStopping in the config: Keras defaults, and bad values named', () => {
    const config = (earlyStopping: unknown) =>
      parseRunConfig({ name: 'es', model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] }, data: 'linear', loss: 'mse', optimizer: 'sgd', training: { epochs: 1, batchSize: 1, earlyStopping } });
    expect(config({}).training.earlyStopping).toEqual({ monitor: 'val_loss', mode: 'auto', patience: 0, minDelta: 0, restoreBestWeights: false });
    expect(() => config({ patience: -1 })).toThrow('training.earlyStopping.patience: expected an integer >= 0, found -1');
    expect(() => config({ mode: 'up' })).toThrow('training.earlyStopping.mode: expected one of auto, min, max, found "up"');
    expect(() => config({ minDelta: -0.1 })).toThrow('training.earlyStopping.minDelta: expected a finite number >= 0, found -0.1');
    expect(() => config({ patience: 2, restore: true })).toThrow(/training\.earlyStopping\.restore/);
  });
});
