/**
 * stop() pauses: fit() returns at a step boundary and a later fit() continues from there (as
 * Keras resets model.stop_training at the next fit), ending where an uninterrupted run ends.
 * Issue 10: the stop was permanent, every later fit() returned at once. A stop() before any
 * fit() ends that fit alone; an aborted signal ends every fit.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import type { EpochEvent } from '../../src/train/events.js';
import { Trainer } from '../../src/train/trainer.js';

const SEGMENT = 4;

function config(dir: string): RunConfig {
  return parseRunConfig({
    name: 'stop-and-continue',
    // The mnist-mlp shape on 1,600 images: 50 steps per epoch, segments of 4 (everySteps).
    model: {
      inputShape: [28, 28, 1],
      layers: [
        { type: 'flatten' },
        { type: 'dense', units: 64, activation: 'relu' },
        { type: 'dropout', rate: 0.2 },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
    },
    data: { source: 'embedded-mnist', trainLimit: 1600 },
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.001 },
    training: { epochs: 1, batchSize: 32, seed: 9 },
    parallel: { workers: 2 },
    backend: 'cpu',
    output: { dir, metricsLog: false },
    checkpoint: { dir: join(dir, 'checkpoints'), everySteps: SEGMENT, everySeconds: 0, keepLast: 100 },
  });
}

const stepOf = (file: string) => Number(/-s(\d+)\.rtckpt$/.exec(file)![1]);

describe('stop() and a later fit()', () => {
  it('stops at a step boundary; the next fit continues the epoch and ends as an uninterrupted fit', async () => {
    const whole = await Trainer.create(config(mkdtempSync(join(tmpdir(), 'ringtrain-stop-whole-'))), { checkpoints: true });
    let expected: { params: Float32Array; history: EpochEvent[]; checkpoints: number[] };
    try {
      const history = await whole.fit();
      expected = { params: whole.params(), history, checkpoints: whole.checkpointsWritten.map(stepOf) };
    } finally {
      await whole.close();
    }
    expect(expected.checkpoints.at(-1)).toBe(50);

    let stopAsked = -1;
    let trainer: Trainer | undefined;
    trainer = await Trainer.create(config(mkdtempSync(join(tmpdir(), 'ringtrain-stop-paused-'))), {
      checkpoints: true,
      progressIntervalMs: 1,
      onEvent(event) {
        if (event.type === 'progress' && stopAsked < 0 && event.step >= 10) {
          stopAsked = event.step;
          trainer!.stop();
        }
      },
    });
    try {
      expect(await trainer.fit()).toEqual([]);
      expect(trainer.stopped).toBe(true);
      const { epoch, stepInEpoch } = trainer.position;
      expect(epoch).toBe(0);
      // At the end of the segment the stop came in (a step boundary), with a checkpoint there.
      expect(stepInEpoch).toBeGreaterThanOrEqual(stopAsked);
      expect(stepInEpoch).toBeLessThan(50);
      expect(stepInEpoch % SEGMENT).toBe(0);
      expect(stepOf(trainer.checkpointsWritten.at(-1)!)).toBe(stepInEpoch);

      // Continues from that step, not from the epoch's start, and finishes the epoch.
      const history = await trainer.fit();
      expect(trainer.stopped).toBe(false);
      expect(trainer.position).toEqual({ epoch: 1, stepInEpoch: 0 });
      expect(history).toHaveLength(1);
      expect(history[0]!.steps).toBe(50);
      expect(history[0]!.samples).toBe(expected.history[0]!.samples);
      expect(Math.abs(history[0]!.loss - expected.history[0]!.loss)).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(history[0]!.metrics.accuracy! - expected.history[0]!.metrics.accuracy!)).toBeLessThanOrEqual(1e-6);
      // The same replica count: the same weights, bit for bit.
      expect(trainer.params()).toEqual(expected.params);
      // The same checkpoints as the uninterrupted run (the stop's falls on one of its steps).
      expect(trainer.checkpointsWritten.map(stepOf)).toEqual(expected.checkpoints);
      // Done: a further fit has nothing left to train.
      expect(await trainer.fit()).toEqual([]);
    } finally {
      await trainer.close();
    }
  });

  it('a stop() before fit() ends that fit alone; an aborted signal ends every fit', async () => {
    const base = config(mkdtempSync(join(tmpdir(), 'ringtrain-stop-early-')));
    const cfg = { ...base, training: { ...base.training, epochs: 2 } };
    const trainer = await Trainer.create(cfg);
    try {
      trainer.stop();
      expect(await trainer.fit(1)).toEqual([]);
      expect(trainer.stopped).toBe(true);
      expect(trainer.position).toEqual({ epoch: 0, stepInEpoch: 0 });
      expect(await trainer.fit(1)).toHaveLength(1);
      expect(trainer.stopped).toBe(false);
    } finally {
      await trainer.close();
    }

    const abort = new AbortController();
    const signalled = await Trainer.create(cfg, { signal: abort.signal });
    try {
      abort.abort();
      expect(await signalled.fit(1)).toEqual([]);
      expect(await signalled.fit(1)).toEqual([]);
      expect(signalled.stopped).toBe(true);
      expect(signalled.position).toEqual({ epoch: 0, stepInEpoch: 0 });
    } finally {
      await signalled.close();
    }
  });
});
