/**
 * Progress events carry the epoch's running loss and metrics: the sums of the epoch so far
 * divided by its samples so far, as the epoch event computes them. Issue 10: the replicas'
 * rows restarted their loss sum with each segment (runSteps call) but not their sample count,
 * and the coordinator added them to the epoch's finished segments, so the live loss drifted
 * to about half the epoch's (0.31 shown for 0.57).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import type { EpochEvent, ProgressEvent } from '../../src/train/events.js';
import { Trainer } from '../../src/train/trainer.js';

const BATCH = 32;
const SEGMENT = 4;

function config(dir: string) {
  return parseRunConfig({
    name: 'progress',
    // The mnist-mlp shape, on 1,600 images: 50 steps per epoch, segments of 4 (everySteps).
    model: {
      inputShape: [28, 28, 1],
      layers: [
        { type: 'flatten' },
        { type: 'dense', units: 128, activation: 'relu' },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
    },
    data: { source: 'embedded-mnist', trainLimit: 1600 },
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.001 },
    training: { epochs: 2, batchSize: BATCH, seed: 5 },
    parallel: { workers: 2 },
    backend: 'cpu',
    output: { dir, metricsLog: false },
    checkpoint: { everySteps: SEGMENT },
  });
}

describe('progress events', () => {
  it("carry the epoch's running loss and accuracy; the last of an epoch equals the epoch event", async () => {
    const cfg = config(mkdtempSync(join(tmpdir(), 'ringtrain-progress-')));
    const progress: ProgressEvent[] = [];
    const epochs: EpochEvent[] = [];
    const trainer = await Trainer.create(cfg, {
      progressIntervalMs: 1,
      onEvent(event) {
        if (event.type === 'progress') progress.push(event);
        if (event.type === 'epoch') epochs.push(event);
      },
    });
    try {
      await trainer.fit();
    } finally {
      await trainer.close();
    }
    expect(epochs).toHaveLength(2);
    for (const epoch of epochs) {
      const live = progress.filter((p) => p.epoch === epoch.epoch);
      // The last is emitted at the epoch's end, with the epoch event's values.
      const last = live.at(-1)!;
      expect(last.step).toBe(epoch.steps);
      expect(last.samples).toBe(epoch.samples);
      expect(Math.abs(last.loss - epoch.loss)).toBeLessThanOrEqual(1e-6);
      expect(Object.keys(last.metrics)).toEqual(['accuracy']);
      expect(Math.abs(last.metrics.accuracy! - epoch.metrics.accuracy!)).toBeLessThanOrEqual(1e-6);

      // The polled ones: never more samples than the steps reached can hold (a replica may be
      // up to a step ahead of the slowest), losses and accuracies that are means.
      const polled = live.slice(0, -1);
      for (const p of polled) {
        expect(p.step).toBeLessThanOrEqual(epoch.steps);
        expect(p.samples).toBeGreaterThanOrEqual(p.step * BATCH);
        expect(p.samples).toBeLessThanOrEqual(Math.min(epoch.samples, (p.step + 1) * BATCH));
        expect(p.loss).toBeGreaterThan(0);
        expect(p.metrics.accuracy).toBeGreaterThanOrEqual(0);
        expect(p.metrics.accuracy).toBeLessThanOrEqual(1);
      }
      // Polls in several segments, late ones among them. In the second epoch the loss has
      // levelled off: there a late running mean is close to the epoch's (the old sums gave
      // about half of it).
      const segments = new Set(polled.map((p) => Math.floor(p.step / SEGMENT)));
      expect(segments.size).toBeGreaterThanOrEqual(3);
      const late = polled.filter((p) => p.step >= epoch.steps * 0.75);
      expect(late.length).toBeGreaterThan(0);
      if (epoch.epoch === 1) continue;
      for (const p of late) {
        expect(Math.abs(p.loss - epoch.loss) / epoch.loss).toBeLessThan(0.05);
        expect(Math.abs(p.metrics.accuracy! - epoch.metrics.accuracy!)).toBeLessThan(0.05);
      }
    }
  });
});
