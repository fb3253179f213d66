/**
 * RMSProp as tf.train.rmsprop(lr, decay, momentum, epsilon, centered); `rho` is TF.js's decay.
 *
 * TF.js rule (every op rounded to float32; rho, 1-rho, lr, momentum, epsilon are float32 scalars):
 *   ms  = ms*rho + g²*(1-rho)
 *   mg  = mg*rho + g*(1-rho)                                  (centered only)
 *   d   = g*lr / sqrt(ms + epsilon)                            (plain)
 *   d   = g*lr / sqrt(ms - (mg² + epsilon))                    (centered)
 *   mom = mom*momentum + d;  p = p - mom
 * TF.js keeps the momentum accumulator even with momentum 0; then mom*0 + d is d bit for bit
 * (for finite mom), so we drop that state array and save one parameter-sized buffer.
 */
import type { GradientClippingSpec } from './clipping.js';
import { checkShardArguments, type ShardOptimizer } from './optimizer.js';

/** Clipping options ride along for checkpoints and resume checks; the replica applies them. */
export interface RmspropHyperParameters extends GradientClippingSpec {
  learningRate: number;
  rho: number;
  momentum: number;
  epsilon: number;
  centered: boolean;
}

const NO_STATE = new Float32Array(0);

export class RmspropShardOptimizer implements ShardOptimizer {
  readonly name = 'rmsprop' as const;
  readonly hyperParameters: Readonly<RmspropHyperParameters>;
  readonly stateNames: readonly string[];
  private readonly learningRate: number;
  private readonly rho: number;
  private readonly oneMinusRho: number;
  private readonly momentum: number;
  private readonly epsilon: number;
  private readonly meanGradIndex: number;
  private readonly momentumIndex: number;

  constructor(hyperParameters: RmspropHyperParameters) {
    this.hyperParameters = Object.freeze({ ...hyperParameters });
    const { learningRate, rho, momentum, epsilon, centered } = hyperParameters;
    this.learningRate = Math.fround(learningRate);
    this.rho = Math.fround(rho);
    this.oneMinusRho = Math.fround(1 - rho);
    this.momentum = Math.fround(momentum);
    this.epsilon = Math.fround(epsilon);
    // Named as TF.js names its accumulators ('<var>/rms', '<var>/mg', '<var>/momentum').
    const names = ['rms'];
    this.meanGradIndex = centered ? names.push('mg') - 1 : -1;
    this.momentumIndex = this.momentum !== 0 ? names.push('momentum') - 1 : -1;
    this.stateNames = Object.freeze(names);
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
    const meanSquare = state[0]!;
    const centered = this.meanGradIndex >= 0;
    const hasMomentum = this.momentumIndex >= 0;
    // Empty placeholders keep the loop's array variables monomorphic; they are never indexed.
    const meanGrad = centered ? state[this.meanGradIndex]! : NO_STATE;
    const moment = hasMomentum ? state[this.momentumIndex]! : NO_STATE;
    const learningRate = rate === undefined ? this.learningRate : Math.fround(rate);
    const rho = this.rho;
    const oneMinusRho = this.oneMinusRho;
    const momentum = this.momentum;
    const epsilon = this.epsilon;
    for (let i = from; i < to; i++) {
      const g = grads[i]!;
      const ms = Math.fround(Math.fround(meanSquare[i]! * rho) + Math.fround(Math.fround(g * g) * oneMinusRho));
      meanSquare[i] = ms;
      let denominatorSquared: number;
      if (centered) {
        const mg = Math.fround(Math.fround(meanGrad[i]! * rho) + Math.fround(g * oneMinusRho));
        meanGrad[i] = mg;
        denominatorSquared = Math.fround(ms - Math.fround(Math.fround(mg * mg) + epsilon));
      } else {
        denominatorSquared = Math.fround(ms + epsilon);
      }
      let delta = Math.fround(Math.fround(g * learningRate) / Math.fround(Math.sqrt(denominatorSquared)));
      if (hasMomentum) {
        delta = Math.fround(Math.fround(moment[i]! * momentum) + delta);
        moment[i] = delta;
      }
      params[i] = params[i]! - delta;
    }
  }
}
