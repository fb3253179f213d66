/**
 * A model that cannot train with its loss is found by one forward and backward pass on two
 * samples before any replica starts: a UserError (exit 2) naming the layer, not a stack from
 * every replica at step 1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silenceCpuBanner } from '../../src/backend/select-backend.js';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { UserError } from '../../src/errors.js';
import { buildModel } from '../../src/model/build-model.js';
import { checkModelTrains } from '../../src/model/check-training.js';
import { prepareRun } from '../../src/train/setup.js';
import { killAll, startRingtrain } from '../helpers/processes.js';

afterEach(killAll);

let previousBackend: string;
beforeAll(async () => {
  previousBackend = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
});
afterAll(async () => {
  if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
});

const dataset = (featureShape: number[], labelShape: number[], size = 8) =>
  createSharedDataset({
    name: 'generated',
    featureShape,
    labelShape,
    features: Float32Array.from({ length: size * featureShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)),
    labels: Float32Array.from({ length: size * labelShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i)),
  });

const mse = { name: 'meanSquaredError', fromLogits: false } as const;

function errorOf(fn: () => void): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).not.toContain('\n');
    return error as UserError;
  }
  throw new Error('expected a UserError, but nothing was thrown');
}

describe('checkModelTrains', () => {
  it('names the config layer whose reshape has the wrong size', async () => {
    const model = await buildModel({ inputShape: [3], layers: [{ type: 'dense', units: 4 }, { type: 'reshape', targetShape: [3, 2] }, { type: 'flatten' }] }, 1);
    const e = errorOf(() => checkModelTrains(model, mse, dataset([3], [6]), true));
    expect(e.message).toBe('model.layers[1] (reshape_2, a Reshape layer): fails on a batch of 2 training samples of input shape [2, 4]: Total size of new array must be unchanged.');
    model.dispose();
  });

  it('names the output layer and both shapes when the labels do not fit the output for the loss', async () => {
    // 4 outputs as [2, 2] against labels [4]: the same count, which the data checks accept.
    const model = await buildModel({ inputShape: [3], layers: [{ type: 'dense', units: 4 }, { type: 'reshape', targetShape: [2, 2] }] }, 1);
    const e = errorOf(() => checkModelTrains(model, mse, dataset([3], [4]), true));
    expect(e.message).toMatch(/^loss meanSquaredError: the output of model\.layers\[1\] \(reshape_2, a Reshape layer\), of shape \[2, 2, 2\], does not fit labels of shape \[2, 4\]: .+$/);
    model.dispose();
  });

  it('refuses a model without trainable weights', async () => {
    const model = await buildModel({ inputShape: [2, 2], layers: [{ type: 'flatten' }] }, 1);
    const e = errorOf(() => checkModelTrains(model, mse, dataset([2, 2], [4]), true));
    expect(e.message).toBe('model: expected at least one trainable weight, found none (layers: flatten_1); there is nothing to train');
    model.dispose();
  });

  it('names a weight the loss does not depend on (a functional model with a dead branch)', () => {
    const input = tf.input({ shape: [3] });
    const used = tf.layers.dense({ units: 1, name: 'used' }).apply(input) as tf.SymbolicTensor;
    const dead = tf.layers.dense({ units: 1, name: 'dead' });
    dead.apply(input);
    const model = tf.model({ inputs: input, outputs: used });
    // tf.model keeps only the layers on the path to the outputs: give it the dead weight by hand.
    expect(model.trainableWeights.map((w) => w.originalName)).toEqual(['used/kernel', 'used/bias']);
    const withDead = Object.create(model, { trainableWeights: { value: [...model.trainableWeights, ...dead.trainableWeights] } }) as tf.LayersModel;
    const e = errorOf(() => checkModelTrains(withDead, mse, dataset([3], [1]), false));
    expect(e.message).toBe('model: weight dead/kernel gets no gradient of shape [3, 1] from the loss meanSquaredError');
    model.dispose();
  });

  it('accepts a model that trains, and leaves no tensor behind', async () => {
    const model = await buildModel({ inputShape: [3], layers: [{ type: 'dense', units: 4, activation: 'relu' }, { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 1 }] }, 1);
    const before = tf.memory().numTensors;
    checkModelTrains(model, mse, dataset([3], [1]), true);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('before the replicas start', () => {
  it('prepareRun refuses the model (no thread is started)', async () => {
    const config = parseRunConfig({
      name: 'bad-reshape',
      model: { inputShape: [3], layers: [{ type: 'dense', units: 4 }, { type: 'reshape', targetShape: [5] }, { type: 'dense', units: 1 }] },
      data: 'linear',
      loss: 'mse',
      optimizer: 'sgd',
      training: { epochs: 1, batchSize: 4 },
      parallel: { workers: 1 },
      backend: 'cpu',
      output: { metricsLog: false },
    });
    await expect(prepareRun(config, { data: { train: dataset([3], [1]) } })).rejects.toThrow(
      'model.layers[1] (reshape_2, a Reshape layer): fails on a batch of 2 training samples of input shape [2, 4]: Total size of new array must be unchanged.',
    );
  });

  it('the CLI exits with code 2 and one line, no stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-check-training-'));
    try {
      const config = join(dir, 'bad.json');
      writeFileSync(
        config,
        JSON.stringify({
          model: { inputShape: [1], layers: [{ type: 'dense', units: 4 }, { type: 'reshape', targetShape: [3] }, { type: 'dense', units: 1 }] },
          data: { source: 'linear', samples: 20 },
          loss: 'meanSquaredError',
          optimizer: 'sgd',
          training: { epochs: 1, batchSize: 10 },
        }),
      );
      const run = startRingtrain(['train', config, '--workers', '1', '--no-checkpoints', '--out', join(dir, 'out'), '--json']);
      expect(await run.exited(60_000), run.stderr()).toBe(2);
      expect(run.stderr()).toBe('ringtrain: model.layers[1] (reshape_2, a Reshape layer): fails on a batch of 2 training samples of input shape [2, 4]: Total size of new array must be unchanged.\n');
      expect(run.stdout()).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
