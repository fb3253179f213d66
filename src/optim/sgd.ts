/**
 * SGD as tf.train.sgd(lr) (momentum 0) and tf.train.momentum(lr, momentum, useNesterov).
 *
 * TF.js rules (every op rounded to float32, `c = -lr` and `m = momentum` are float32 scalars):
 *   plain:     p = c*g + p
 *   momentum:  a = m*a + g;  p = c*a + p
 *   nesterov:  a = m*a + g;  p = c*(g + a*m) + p
 * With momentum 0 the momentum rules reduce bit for bit to the plain one, so no state is kept.
 */
import type { GradientClippingSpec } from './clipping.js';
import { checkShardArguments, type ShardOptimizer } from './optimizer.js';

/** Clipping options ride along for checkpoints and resume checks; the replica applies them. */
export interface SgdHyperParameters extends GradientClippingSpec {
  learningRate: number;
  momentum: number;
  nesterov: boolean;
}

export class SgdShardOptimizer implements ShardOptimizer {
  readonly name = 'sgd' as const;
  readonly hyperParameters: Readonly<SgdHyperParameters>;
  readonly stateNames: readonly string[];
  private readonly negLearningRate: number;
  private readonly momentum: number;

  constructor(hyperParameters: SgdHyperParameters) {
    this.hyperParameters = Object.freeze({ ...hyperParameters });
    this.negLearningRate = Math.fround(-hyperParameters.learningRate);
    this.momentum = Math.fround(hyperParameters.momentum);
    // Named as TF.js names the accumulator ('<var>/momentum'), so checkpoints can map across.
    this.stateNames = Object.freeze(this.momentum === 0 ? [] : ['momentum']);
  }

  update(
    params: Float32Array,
    grads: Float32Array,
    state: readonly Float32Array[],
    from: number,
    to: number,
    step: number,
    learningRate?: number,
  ): void {
    checkShardArguments(this, params, grads, state, from, to, step);
    const c = learningRate === undefined ? this.negLearningRate : Math.fround(-learningRate);
    const m = this.momentum;
    // Storing into a Float32Array rounds, so only intermediates need Math.fround.
    if (m === 0) {
      for (let i = from; i < to; i++) {
        params[i] = Math.fround(c * grads[i]!) + params[i]!;
      }
      return;
    }
    const accumulation = state[0]!;
    if (this.hyperParameters.nesterov) {
      for (let i = from; i < to; i++) {
        const g = grads[i]!;
        const a = Math.fround(Math.fround(m * accumulation[i]!) + g);
        accumulation[i] = a;
        params[i] = Math.fround(c * Math.fround(g + Math.fround(a * m))) + params[i]!;
      }
    } else {
      for (let i = from; i < to; i++) {
        const a = Math.fround(Math.fround(m * accumulation[i]!) + grads[i]!);
        accumulation[i] = a;
        params[i] = Math.fround(c * a) + params[i]!;
      }
    }
  }
}
