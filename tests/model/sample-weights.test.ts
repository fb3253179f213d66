/**
 * How a sample's weight is made from its per-sample weight and its class's weight, for each kind
 * of label tfjs-layers reads a class from (class id, 0/1, one-hot), and the regularizer arguments
 * of a config surviving a model.json round trip (the form an export writes).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { buildModel } from '../../src/model/build-model.js';
import { SampleWeighting } from '../../src/model/sample-weights.js';

describe('SampleWeighting', () => {
  const weighting = new SampleWeighting({ '0': 0.5, '2': 3 });

  it('reads the class from a class id, a 0/1 label or a one-hot label; unlisted classes weigh 1', () => {
    expect(Array.from(weighting.combine(Float32Array.from([2, 0, 1, 2]), 1, 4, undefined)!)).toEqual([3, 0.5, 1, 3]);
    expect(Array.from(weighting.combine(Float32Array.from([0, 0, 1, 0, 1, 0, 0, 0, 1]), 3, 3, undefined)!)).toEqual([3, 1, 3]);
    // Times the per-sample weights, when the data has them.
    expect(Array.from(weighting.combine(Float32Array.from([0, 1]), 1, 2, Float32Array.from([4, 2]))!)).toEqual([2, 2]);
  });

  it('without class weights, the per-sample weights alone (or none: the unweighted loss)', () => {
    const none = new SampleWeighting(undefined);
    expect(none.combine(Float32Array.from([1, 0]), 1, 2, undefined)).toBeUndefined();
    expect(Array.from(none.combine(Float32Array.from([1, 0]), 1, 2, Float32Array.from([0.25, 2]))!)).toEqual([0.25, 2]);
  });

  it('refuses class weights for labels of several class ids per sample (a sequence)', () => {
    const sparse = new SampleWeighting({ '0': 2 }, true);
    expect(() => sparse.combine(Float32Array.from([1, 2, 0, 1]), 2, 2, undefined)).toThrow(ConfigError);
    expect(() => sparse.combine(Float32Array.from([1, 2, 0, 1]), 2, 2, undefined)).toThrow('training.classWeight: expected one class id per sample, found labels of 2 class ids per sample');
  });
});

describe('regularizer arguments', () => {
  it('build tfjs L1L2 regularizers that survive the model.json round trip with their factors', async () => {
    await tf.setBackend('cpu');
    const model = await buildModel({ inputShape: [2], layers: [{ type: 'dense', units: 2, kernelRegularizer: { l1: 0.25 }, biasRegularizer: 'l1l2' }] }, 1);
    const layer = model.toJSON(null, false) as unknown as { config: { layers: { config: Record<string, unknown> }[] } };
    const config = layer.config.layers[0]!.config;
    expect(config.kernel_regularizer ?? config.kernelRegularizer).toEqual({ class_name: 'L1L2', config: { l1: 0.25, l2: 0 } });
    expect(config.bias_regularizer ?? config.biasRegularizer).toEqual({ class_name: 'L1L2', config: { l1: 0.01, l2: 0.01 } });
    const again = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) } as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);
    again.setWeights(model.getWeights());
    model.predict(tf.zeros([1, 2]));
    again.predict(tf.zeros([1, 2]));
    const sum = (m: tf.LayersModel) => m.calculateLosses().reduce((s, t) => s + t.dataSync()[0]!, 0);
    expect(sum(again)).toBeCloseTo(sum(model), 6);
    expect(sum(model)).toBeGreaterThan(0);
    model.dispose();
    again.dispose();
  });
});
