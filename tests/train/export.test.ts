/** Export to TensorFlow.js files: tf.loadLayersModel gets the trainer's predictions back. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { exportTfjs } from '../../src/checkpoint/export-tfjs.js';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { tfjsFileHandler } from '../../src/model/tfjs-files.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';

describe('export', () => {
  it('a checkpoint exported as model.json + weights.bin loads with tf.loadLayersModel and predicts as the trainer does; it also warm-starts a run', async () => {
    const random = mulberry32(5);
    const features = Float32Array.from({ length: 40 * 8 }, () => random() * 2 - 1);
    const data = { train: createSharedDataset({ name: 'g', featureShape: [8], labelShape: [], features, labels: Float32Array.from({ length: 40 }, (_, i) => i % 3) }) };
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-export-'));
    const config = parseRunConfig({
      name: 'export',
      model: { inputShape: [8], layers: [{ type: 'dense', units: 16, activation: 'tanh' }, { type: 'dense', units: 3, activation: 'softmax' }] },
      data: 'embedded-mnist',
      loss: 'sparseCategoricalCrossentropy',
      optimizer: { name: 'adam', learningRate: 0.05 },
      training: { epochs: 3, batchSize: 8 },
      parallel: { workers: 2 },
      output: { dir, metricsLog: false },
    });
    const trainer = await Trainer.create(config, { data, checkpoints: true });
    let expected: Float32Array;
    let file: string;
    try {
      await trainer.fit();
      expected = await trainer.predict(features);
      file = trainer.checkpointsWritten.at(-1)!;
    } finally {
      await trainer.close();
    }
    const modelJson = await exportTfjs(await readCheckpointFile(file), join(dir, 'export'));

    await tf.setBackend('cpu');
    const model = await tf.loadLayersModel(tfjsFileHandler(modelJson));
    const predicted = (model.predict(tf.tensor(features, [40, 8])) as tf.Tensor).dataSync();
    expect(predicted.length).toBe(120);
    let worst = 0;
    predicted.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected[i]!))));
    expect(worst).toBeLessThan(1e-5);
    model.dispose();

    // Warm start: a config whose model is the exported model.json starts from its weights.
    const warmConfig = parseRunConfig({ ...JSON.parse(JSON.stringify(config)), model: { topology: modelJson } });
    const warm = await Trainer.create(warmConfig, { data });
    try {
      const state = await readCheckpointFile(file);
      expect(Buffer.from(warm.params().buffer).equals(Buffer.from(state.params.buffer))).toBe(true);
    } finally {
      await warm.close();
    }
  });
});
