/**
 * Synthetic data sets for quick runs and tests.
 *  - xor: the four points [0,0]→0, [0,1]→1, [1,0]→1, [1,1]→0; features [2], labels [1].
 *  - linear: x ~ N(0,1), y = 2x + 1 + N(0,1); features [1], labels [1]. Train and test are two
 *    independent draws derived from the run seed.
 */
import { mixSeed, mulberry32, normalSampler } from '../../util/random.js';

export interface XYData {
  features: Float32Array;
  labels: Float32Array;
}

export const LINEAR_SLOPE = 2;
export const LINEAR_INTERCEPT = 1;
export const LINEAR_DEFAULT_SAMPLES = 100;
/** Mixed into the run seed so the linear data does not reuse the weights' or sampler's streams. */
const LINEAR_STREAM = 0x6c696e; // "lin"

export function xorData(): XYData {
  return {
    features: Float32Array.from([0, 0, 0, 1, 1, 0, 1, 1]),
    labels: Float32Array.from([0, 1, 1, 0]),
  };
}

/**
 * `samples` points of y = 2x + 1 + noise. `split` 0 is the train draw, 1 the test draw; for
 * each point x is drawn first, then the noise, from one normal stream.
 */
export function linearData(samples: number, seed: number, split: 0 | 1): XYData {
  const normal = normalSampler(mulberry32(mixSeed(seed, LINEAR_STREAM, split)));
  const features = new Float32Array(samples);
  const labels = new Float32Array(samples);
  for (let i = 0; i < samples; i++) {
    const x = normal();
    features[i] = x;
    labels[i] = LINEAR_SLOPE * x + LINEAR_INTERCEPT + normal();
  }
  return { features, labels };
}
