/** Over 1,000 steps the tensors per replica stay constant and resident memory stays bounded. */
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { Trainer } from '../../src/train/trainer.js';

describe('resources', () => {
  it('1,000 steps leave the tensor count of every replica unchanged and RSS within 64 MB of warm-up', async () => {
    const data = {
      train: createSharedDataset({
        name: 'generated',
        featureShape: [8, 8, 1],
        labelShape: [],
        features: new Uint8Array(100 * 64).map((_, i) => (i * 37) % 256),
        labels: Float32Array.from({ length: 100 }, (_, i) => i % 10),
        featureScale: 1 / 255,
      }),
    };
    const config = parseRunConfig({
      name: 'leaks',
      model: {
        inputShape: [8, 8, 1],
        layers: [
          { type: 'conv2d', filters: 4, kernelSize: 3, activation: 'relu' },
          { type: 'maxPooling2d', poolSize: 2 },
          { type: 'flatten' },
          { type: 'dropout', rate: 0.1 },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      data: 'embedded-mnist',
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
      optimizer: 'adam',
      // 10 steps per epoch; validation on 20 samples after each epoch.
      training: { epochs: 1, batchSize: 8, validationSplit: 0.2 },
      parallel: { workers: 2 },
      backend: 'wasm',
      output: { metricsLog: false },
    });
    const trainer = await Trainer.create(config, { data });
    try {
      await trainer.fit(10); // warm-up: 100 steps
      const tensorsAfterWarmUp = await trainer.tensorCounts();
      const rssAfterWarmUp = process.memoryUsage().rss;
      await trainer.fit(100); // 1,000 steps
      expect(trainer.history).toHaveLength(110);
      expect(await trainer.tensorCounts()).toEqual(tensorsAfterWarmUp);
      expect(process.memoryUsage().rss - rssAfterWarmUp).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await trainer.close();
    }
  });
});
