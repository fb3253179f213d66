/**
 * Adam as tf.train.adam(lr, beta1, beta2, epsilon), and AdamW as Keras 3 AdamW: the same Adam
 * step preceded by the decoupled weight decay `p = p - p*weightDecay*lr`.
 *
 * TF.js rule (every op rounded to float32; beta1, beta2, 1-beta1, 1-beta2, epsilon and -lr are
 * float32 scalars, with 1-beta computed in double before rounding as TF.js does):
 *   m = m*beta1 + g*(1-beta1)
 *   v = v*beta2 + g²*(1-beta2)
 *   p = (m/(1-beta1^t)) / (sqrt(v/(1-beta2^t)) + epsilon) * -lr + p
 *
 * AdamW keeps TF.js's form of the Adam step (epsilon added to sqrt of the bias-corrected v)
 * rather than Keras's, so AdamW with weightDecay 0 is exactly Adam.
 */
import type { GradientClippingSpec } from './clipping.js';
import { checkShardArguments, type ShardOptimizer } from './optimizer.js';
import { WasmAdamKernel } from './wasm/adam-kernel.js';

/** Below this many parameters the copy into WebAssembly memory costs more than it saves. */
const WASM_MIN_SHARD = 256;

/** Clipping options ride along for checkpoints and resume checks; the replica applies them. */
export interface AdamHyperParameters extends GradientClippingSpec {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface AdamWHyperParameters extends AdamHyperParameters {
  weightDecay: number;
}

/**
 * 1 - beta^t exactly as TF.js gets it: its accBeta is a float32 variable that starts at beta
 * and is multiplied by float32 beta after every step, so beta^t is the float32 running product,
 * not Math.pow (which drifts from it by many ulps after a few hundred steps).
 *
 * The product is memoized for the last step asked, so advancing steps cost O(1); asking for an
 * earlier step recomputes from step 1. Once 1 - beta^t rounds to 1 it stays 1 for every later
 * step (the product only shrinks), so the loop stops there: at most ~17k iterations for 0.999.
 * The cache is a pure function of `step`, so the optimizer stays stateless as seen from outside.
 */
export class Float32BiasCorrection {
  private readonly beta: number;
  private step = 1;
  private power: number;
  private oneMinusPower: number;

  constructor(beta: number) {
    this.beta = Math.fround(beta);
    this.power = this.beta;
    this.oneMinusPower = Math.fround(1 - this.power);
  }

  /** float32(1 - float32 beta^step), step >= 1. */
  at(step: number): number {
    if (step < this.step) {
      this.step = 1;
      this.power = this.beta;
      this.oneMinusPower = Math.fround(1 - this.power);
    }
    while (this.step < step && this.oneMinusPower !== 1) {
      this.power = Math.fround(this.power * this.beta);
      this.oneMinusPower = Math.fround(1 - this.power);
      this.step++;
    }
    return this.oneMinusPower;
  }
}

export class AdamShardOptimizer implements ShardOptimizer {
  readonly name: 'adam' | 'adamw';
  readonly hyperParameters: Readonly<AdamHyperParameters | AdamWHyperParameters>;
  // Named as TF.js names the moments ('<var>/m', '<var>/v'), so checkpoints can map across.
  readonly stateNames: readonly string[] = Object.freeze(['m', 'v']);
  private readonly learningRate: number;
  private readonly negLearningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly oneMinusBeta1: number;
  private readonly oneMinusBeta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly biasCorrection1: Float32BiasCorrection;
  private readonly biasCorrection2: Float32BiasCorrection;
  private readonly kernel: WasmAdamKernel | undefined;

  constructor(name: 'adam', hyperParameters: AdamHyperParameters);
  constructor(name: 'adamw', hyperParameters: AdamWHyperParameters);
  constructor(name: 'adam' | 'adamw', hyperParameters: AdamHyperParameters | AdamWHyperParameters) {
    this.name = name;
    this.hyperParameters = Object.freeze({ ...hyperParameters });
    const { learningRate, beta1, beta2, epsilon } = hyperParameters;
    this.learningRate = Math.fround(learningRate);
    this.negLearningRate = Math.fround(-learningRate);
    this.beta1 = Math.fround(beta1);
    this.beta2 = Math.fround(beta2);
    this.oneMinusBeta1 = Math.fround(1 - beta1);
    this.oneMinusBeta2 = Math.fround(1 - beta2);
    this.epsilon = Math.fround(epsilon);
    this.weightDecay = name === 'adamw' ? Math.fround((hyperParameters as AdamWHyperParameters).weightDecay) : 0;
    this.biasCorrection1 = new Float32BiasCorrection(beta1);
    this.biasCorrection2 = new Float32BiasCorrection(beta2);
    this.kernel = WasmAdamKernel.create();
  }

  update(
    params: Float32Array,
    grads: Float32Array,
    state: readonly Float32Array[],
    from: number,
    to: number,
    step: number,
    rate?: number,
  ): void {
    checkShardArguments(this, params, grads, state, from, to, step);
    const m = state[0]!;
    const v = state[1]!;
    const correction1 = this.biasCorrection1.at(step);
    const correction2 = this.biasCorrection2.at(step);
    const learningRate = rate === undefined ? this.learningRate : Math.fround(rate);
    const negLearningRate = rate === undefined ? this.negLearningRate : Math.fround(-rate);
    if (this.kernel && to - from >= WASM_MIN_SHARD) {
      const { beta1, beta2, oneMinusBeta1, oneMinusBeta2, epsilon, weightDecay } = this;
      const scalars = { beta1, beta2, oneMinusBeta1, oneMinusBeta2, correction1, correction2, epsilon, negLearningRate, learningRate, weightDecay };
      this.kernel.update(params, grads, m, v, from, to, scalars);
      return;
    }
    this.scalarUpdate(params, grads, m, v, from, to, correction1, correction2, learningRate, negLearningRate);
  }

  /** The reference loop: every op rounded to float32 as TF.js's cpu kernels do. */
  scalarUpdate(
    params: Float32Array,
    grads: Float32Array,
    m: Float32Array,
    v: Float32Array,
    from: number,
    to: number,
    correction1: number,
    correction2: number,
    learningRate = this.learningRate,
    negLearningRate = this.negLearningRate,
  ): void {
    const { beta1, beta2, oneMinusBeta1, oneMinusBeta2, epsilon, weightDecay } = this;
    // Skipping the decay when it is 0 keeps Adam free of `inf*0 = NaN` on diverged weights.
    const decays = weightDecay !== 0;
    for (let i = from; i < to; i++) {
      const g = grads[i]!;
      let p = params[i]!;
      if (decays) {
        // Keras order: variable - variable * wd * lr, with wd and lr cast to float32.
        p = Math.fround(p - Math.fround(Math.fround(p * weightDecay) * learningRate));
      }
      const mi = Math.fround(Math.fround(m[i]! * beta1) + Math.fround(g * oneMinusBeta1));
      const vi = Math.fround(Math.fround(v[i]! * beta2) + Math.fround(Math.fround(g * g) * oneMinusBeta2));
      m[i] = mi;
      v[i] = vi;
      const mHat = Math.fround(mi / correction1);
      const vHat = Math.fround(vi / correction2);
      const ratio = Math.fround(mHat / Math.fround(Math.fround(Math.sqrt(vHat)) + epsilon));
      params[i] = Math.fround(ratio * negLearningRate) + p;
    }
  }
}
