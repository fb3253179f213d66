/** Metric sums as Keras defines the metrics, and losses equal to tfjs-layers' own. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Objective } from '../../src/model/objective.js';

const f = (values: number[]) => Float32Array.from(values);

describe('Objective', () => {
  it('sums accuracies and errors per sample over the batch', () => {
    const sparse = new Objective({ name: 'sparseCategoricalCrossentropy', fromLogits: false }, ['accuracy']);
    // argmax rows: 1, 0, 2; labels 1, 2, 2 → 2 hits
    expect(sparse.metricSums(f([1, 2, 2]), f([0.1, 0.8, 0.1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6]), 3)).toEqual([2]);

    const categorical = new Objective({ name: 'categoricalCrossentropy', fromLogits: false }, ['accuracy', 'categoricalAccuracy']);
    expect(categorical.metricSums(f([0, 1, 1, 0]), f([0.3, 0.7, 0.1, 0.9]), 2)).toEqual([1, 1]);

    const binary = new Objective({ name: 'binaryCrossentropy', fromLogits: false }, ['accuracy']);
    // per sample: mean over 2 outputs of (p > 0.5) == t → 1, 0.5
    expect(binary.metricSums(f([1, 0, 1, 1]), f([0.9, 0.2, 0.6, 0.4]), 2)).toEqual([1.5]);
    const logits = new Objective({ name: 'binaryCrossentropy', fromLogits: true }, ['binaryAccuracy']);
    expect(logits.metricSums(f([1, 0]), f([0.3, -0.1]), 2)).toEqual([2]);

    const regression = new Objective({ name: 'meanSquaredError', fromLogits: false }, ['meanSquaredError', 'meanAbsoluteError']);
    const [mse, mae] = regression.metricSums(f([1, 2, 3, 4]), f([2, 2, 3, 1]), 2);
    expect(mse).toBeCloseTo((1 + 0) / 2 + (0 + 9) / 2, 6);
    expect(mae).toBeCloseTo((1 + 0) / 2 + (0 + 3) / 2, 6);
  });

  it('"accuracy" with meanSquaredError is refused, as it has no meaning there', () => {
    expect(() => new Objective({ name: 'meanSquaredError', fromLogits: false }, ['accuracy'])).toThrow(
      'metrics: accuracy has no meaning for the loss meanSquaredError; use meanSquaredError or meanAbsoluteError',
    );
  });

  it('loss sums equal batch size times the tfjs-layers mean loss', async () => {
    await tf.setBackend('cpu');
    const probabilities = tf.tensor2d([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]);
    const labels = tf.tensor1d([0, 2]);
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [3] })] });
    model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' });
    const keras = (model.evaluate(probabilities, labels) as tf.Scalar).dataSync()[0]!;
    const ours = new Objective({ name: 'sparseCategoricalCrossentropy', fromLogits: false }, []).lossSum(labels, probabilities).dataSync()[0]!;
    expect(ours / 2).toBeCloseTo(keras, 6);
    expect(ours).toBeCloseTo(-(Math.log(0.7) + Math.log(0.8)), 5);
  });
});
