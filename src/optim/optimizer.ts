/**
 * Optimizers that update one shard [from, to) of the flat parameter vector in place. Every
 * replica owns one shard after the all-reduce and updates it alone, so the rules are written
 * element-wise over typed arrays (which may live in SharedArrayBuffers) and reproduce the
 * float32 arithmetic of TensorFlow.js's own optimizers on the cpu backend.
 */

import type { GradientClippingSpec } from './clipping.js';
import type { LearningRateScheduleSpec } from './schedules/index.js';

export type OptimizerName = 'sgd' | 'adam' | 'adamw' | 'rmsprop';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'adam', 'adamw', 'rmsprop'];

/** An optimizer as it appears in a run config (already validated elsewhere). */
export interface OptimizerSpec extends GradientClippingSpec {
  name: OptimizerName;
  /** A constant rate, or a schedule of the update number (optim/schedules/). */
  learningRate?: number | LearningRateScheduleSpec;
  /** sgd (0 = plain SGD), rmsprop */
  momentum?: number;
  /** sgd */
  nesterov?: boolean;
  /** adam, adamw */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** adamw (decoupled, as Keras AdamW) */
  weightDecay?: number;
  /** rmsprop decay */
  rho?: number;
  /** rmsprop */
  centered?: boolean;
}

export interface ShardOptimizer {
  readonly name: OptimizerName;
  /** Fully resolved hyper-parameters (defaults filled in), for logs and checkpoints. */
  readonly hyperParameters: Readonly<Record<string, number | boolean>>;
  /** Names of the per-parameter state arrays it needs, each as long as the parameter vector (e.g. adam: ['m', 'v']). */
  readonly stateNames: readonly string[];
  /**
   * Updates params[from, to) in place from grads[from, to) (the already averaged gradient).
   * state[i] is the full-length array named stateNames[i]; only [from, to) is read or written.
   * step is the 1-based count of updates applied so far including this one (Adam's bias correction needs it);
   * it is the only scalar state, so the optimizer object itself is stateless and a shard can be updated by any thread.
   * learningRate, when given, is this update's rate (a schedule's), in place of hyperParameters.learningRate.
   */
  update(
    params: Float32Array,
    grads: Float32Array,
    state: readonly Float32Array[],
    from: number,
    to: number,
    step: number,
    learningRate?: number,
  ): void;
}

/**
 * Checks the arguments of `update` once per call, so the element loops can index freely:
 * a wrong shard bound or a missing state array would otherwise corrupt a neighbour's shard
 * silently or produce NaN far from the cause.
 */
export function checkShardArguments(
  optimizer: ShardOptimizer,
  params: Float32Array,
  grads: Float32Array,
  state: readonly Float32Array[],
  from: number,
  to: number,
  step: number,
): void {
  const length = params.length;
  if (grads.length !== length) {
    throw new RangeError(`${optimizer.name}: grads has ${grads.length} values, params has ${length}`);
  }
  if (state.length !== optimizer.stateNames.length) {
    throw new RangeError(
      `${optimizer.name}: expected ${optimizer.stateNames.length} state arrays ` +
        `[${optimizer.stateNames.join(', ')}], got ${state.length}`,
    );
  }
  for (let i = 0; i < state.length; i++) {
    if (state[i]!.length !== length) {
      throw new RangeError(
        `${optimizer.name}: state '${optimizer.stateNames[i]}' has ${state[i]!.length} values, params has ${length}`,
      );
    }
  }
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || from > to || to > length) {
    throw new RangeError(`${optimizer.name}: shard [${from}, ${to}) is not within [0, ${length})`);
  }
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`${optimizer.name}: step must be an integer >= 1, got ${step}`);
  }
}
