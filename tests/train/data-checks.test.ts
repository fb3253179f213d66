/** Data that does not fit the model or the loss is refused before any thread starts. */
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { UserError } from '../../src/errors.js';
import { Trainer } from '../../src/train/trainer.js';

const config = (loss: string, units: number, activation = 'softmax') =>
  parseRunConfig({
    name: 'checks',
    model: { inputShape: [4], layers: [{ type: 'dense', units, activation }] },
    data: 'embedded-mnist',
    loss,
    optimizer: 'sgd',
    training: { epochs: 1, batchSize: 4 },
    parallel: { workers: 1 },
    backend: 'cpu',
  });

const dataset = (featureShape: number[], labels: number[], labelShape: number[] = []) => ({
  train: createSharedDataset({ name: 'mine', featureShape, labelShape, features: new Float32Array((labels.length / Math.max(1, labelShape[0] ?? 1)) * featureShape.reduce((a, b) => a * b, 1)), labels }),
});

async function refusal(promise: Promise<Trainer>): Promise<string> {
  const error = await promise.then(
    async (t) => {
      await t.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as Error).message;
}

describe('data checks before training', () => {
  it('a class id out of range for sparse cross-entropy', async () => {
    expect(await refusal(Trainer.create(config('sparseCategoricalCrossentropy', 3), { data: dataset([4], [0, 1, 2, 3, 1]) }))).toBe(
      'mine: label 3 of sample 3 is out of range for sparseCategoricalCrossentropy with 3 classes (expected an integer from 0 to 2)',
    );
  });

  it('a binary label outside 0..1', async () => {
    expect(await refusal(Trainer.create(config('binaryCrossentropy', 1, 'sigmoid'), { data: dataset([4], [0, 1, 2], [1]) }))).toBe(
      'mine: label value 2 at index 2 is out of range for binaryCrossentropy (expected values from 0 to 1)',
    );
  });

  it('samples of another shape than the model input', async () => {
    expect(await refusal(Trainer.create(config('sparseCategoricalCrossentropy', 3), { data: dataset([5], [0, 1]) }))).toBe(
      "model input shape [4] does not match the data's sample shape [5] (mine)",
    );
  });

  it('labels of another shape than the model output', async () => {
    expect(await refusal(Trainer.create(config('meanSquaredError', 2, 'linear'), { data: dataset([4], [0, 1, 2], [3]) }))).toBe(
      "mine: labels of shape [3] do not match the model's output shape [2] for meanSquaredError",
    );
  });
});
