/**
 * Builds a ShardOptimizer from a run config's optimizer spec, filling the defaults a
 * TensorFlow.js user gets from `model.compile({optimizer: 'adam' | 'sgd' | 'rmsprop'})`
 * (tfjs-layers' getOptimizer); epsilon is the cpu backend's float32 epsilon, 1e-7.
 * AdamW follows Keras 3's AdamW defaults.
 */
import { UserError } from '../errors.js';
import { AdamShardOptimizer } from './adam.js';
import { clippingOptionsSet, type GradientClippingSpec } from './clipping.js';
import { initialRate } from './schedules/index.js';
import { OPTIMIZER_NAMES, type OptimizerName, type OptimizerSpec, type ShardOptimizer } from './optimizer.js';
import { RmspropShardOptimizer } from './rmsprop.js';
import { SgdShardOptimizer } from './sgd.js';

/** TF.js backend epsilon for float32 (tfjs-core EPSILON_FLOAT32). */
export const FLOAT32_EPSILON = 1e-7;

export const OPTIMIZER_DEFAULTS = Object.freeze({
  sgd: Object.freeze({ learningRate: 0.01, momentum: 0, nesterov: false }),
  adam: Object.freeze({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: FLOAT32_EPSILON }),
  adamw: Object.freeze({
    learningRate: 0.001,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: FLOAT32_EPSILON,
    weightDecay: 0.004,
  }),
  rmsprop: Object.freeze({ learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: FLOAT32_EPSILON, centered: false }),
}) satisfies Readonly<Record<OptimizerName, Readonly<Record<string, number | boolean>>>>;

export function createOptimizer(spec: OptimizerSpec): ShardOptimizer {
  const name: unknown = spec.name;
  const clip = clipping(spec);
  // A schedule's first rate stands for it among the hyper-parameters (the replica asks the
  // schedule for each update's rate). It may be 0, as a warm-up from 0 starts: so 0 is accepted
  // here (a checkpoint's hyper-parameters are checked by rebuilding the optimizer from them);
  // the config refuses a constant rate of 0.
  const rate = (fallback: number) =>
    nonNegative(spec, 'learningRate', typeof spec.learningRate === 'object' ? initialRate(spec.learningRate) : (spec.learningRate ?? fallback));
  switch (spec.name) {
    case 'sgd': {
      const d = OPTIMIZER_DEFAULTS.sgd;
      return new SgdShardOptimizer({
        learningRate: rate(d.learningRate),
        momentum: nonNegative(spec, 'momentum', spec.momentum ?? d.momentum),
        nesterov: spec.nesterov ?? d.nesterov,
        ...clip,
      });
    }
    case 'adam': {
      const d = OPTIMIZER_DEFAULTS.adam;
      return new AdamShardOptimizer('adam', {
        learningRate: rate(d.learningRate),
        beta1: unitInterval(spec, 'beta1', spec.beta1 ?? d.beta1),
        beta2: unitInterval(spec, 'beta2', spec.beta2 ?? d.beta2),
        epsilon: positive(spec, 'epsilon', spec.epsilon ?? d.epsilon),
        ...clip,
      });
    }
    case 'adamw': {
      const d = OPTIMIZER_DEFAULTS.adamw;
      return new AdamShardOptimizer('adamw', {
        learningRate: rate(d.learningRate),
        beta1: unitInterval(spec, 'beta1', spec.beta1 ?? d.beta1),
        beta2: unitInterval(spec, 'beta2', spec.beta2 ?? d.beta2),
        epsilon: positive(spec, 'epsilon', spec.epsilon ?? d.epsilon),
        weightDecay: nonNegative(spec, 'weightDecay', spec.weightDecay ?? d.weightDecay),
        ...clip,
      });
    }
    case 'rmsprop': {
      const d = OPTIMIZER_DEFAULTS.rmsprop;
      return new RmspropShardOptimizer({
        learningRate: rate(d.learningRate),
        rho: unitInterval(spec, 'rho', spec.rho ?? d.rho),
        momentum: nonNegative(spec, 'momentum', spec.momentum ?? d.momentum),
        epsilon: positive(spec, 'epsilon', spec.epsilon ?? d.epsilon),
        centered: spec.centered ?? d.centered,
        ...clip,
      });
    }
    default:
      // Reachable from untyped callers (JSON, tests) despite the OptimizerName type.
      throw new UserError(`unknown optimizer ${JSON.stringify(name)}`, {
        hint: `use one of: ${OPTIMIZER_NAMES.join(', ')}`,
      });
  }
}

/** The clipping options set (at most one, as Keras), each > 0; absent ones stay out of the hyper-parameters. */
function clipping(spec: OptimizerSpec): GradientClippingSpec {
  const set = clippingOptionsSet(spec);
  if (set.length > 1) throw new UserError(`optimizer ${spec.name}: only one of clipNorm, clipValue, globalClipNorm may be set (as Keras), found ${set.join(' and ')}`);
  return Object.fromEntries(set.map((key) => [key, positive(spec, key, spec[key]!)]));
}

// The config schema validates these too; repeating the cheap checks here keeps a direct
// caller from getting NaN weights many steps later instead of an error now.
function positive(spec: OptimizerSpec, field: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) invalid(spec, field, value, 'a finite number > 0');
  return value;
}

function nonNegative(spec: OptimizerSpec, field: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) invalid(spec, field, value, 'a finite number >= 0');
  return value;
}

/** [0, 1): a decay of 1 would make Adam's bias correction divide by zero. */
function unitInterval(spec: OptimizerSpec, field: string, value: number): number {
  if (!(typeof value === 'number' && value >= 0 && value < 1)) invalid(spec, field, value, 'in [0, 1)');
  return value;
}

function invalid(spec: OptimizerSpec, field: string, value: unknown, expected: string): never {
  throw new UserError(`optimizer ${spec.name}: ${field} must be ${expected}, got ${String(value)}`);
}
