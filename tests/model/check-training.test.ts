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

/**
 * The config check builds a model given as model.layers symbolically and refuses a reshape of
 * the wrong size itself (model/inspect-layers.ts), before prepareRun: a model.json topology is built
 * only by prepareRun, so the pre-check is the first to see its reshape.
 */
describe('before the replicas start (a model.topology file)', () => {
  let dir: string;
  /** A model.json (topology only, no weights) whose reshape of 4 values to [3] tfjs builds without complaint. */
  let modelJson: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ringtrain-check-training-'));
    const model = await buildModel({ inputShape: [1], layers: [{ type: 'dense', units: 4 }, { type: 'reshape', targetShape: [3] }, { type: 'dense', units: 1 }] }, 1);
    modelJson = join(dir, 'model.json');
    writeFileSync(modelJson, JSON.stringify({ format: 'layers-model', modelTopology: model.toJSON(null, false) }));
    model.dispose();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const raw = () => ({
    name: 'bad-reshape',
    model: { topology: modelJson },
    data: { source: 'linear', samples: 20 },
    loss: 'meanSquaredError',
    optimizer: 'sgd',
    training: { epochs: 1, batchSize: 10 },
  });
  // A topology has no model.layers to point into: the layer is named by its name.
  const REFUSAL = 'layer reshape_2 (a Reshape layer): fails on a batch of 2 training samples of input shape [2, 4]: Total size of new array must be unchanged.';

  it('prepareRun refuses the model (no thread is started)', async () => {
    // The config check passes: it does not open the topology file.
    const config = parseRunConfig({ ...raw(), parallel: { workers: 1 }, backend: 'cpu', output: { dir: join(dir, 'out'), metricsLog: false } });
    await expect(prepareRun(config, { data: { train: dataset([1], [1]) } })).rejects.toThrow(new UserError(REFUSAL));
  });

  it('the CLI exits with code 2 and one line, no stack', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify(raw()));
    const run = startRingtrain(['train', config, '--workers', '1', '--no-checkpoints', '--out', join(dir, 'cli-out'), '--json']);
    expect(await run.exited(60_000), run.stderr()).toBe(2);
    expect(run.stderr()).toBe(`ringtrain: ${REFUSAL}\n`);
    expect(run.stdout()).toBe('');
  });
});
