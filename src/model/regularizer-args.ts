/**
 * Weight regularizer arguments of a config's layers (kernelRegularizer, biasRegularizer,
 * recurrentRegularizer, ... every argument named *Regularizer) in the forms a Keras user writes,
 * turned into tfjs-layers regularizers:
 *   {"l2": 0.01}, {"l1": 0.001}, {"l1": 0.001, "l2": 0.01}   the factors (one left out is 0)
 *   "l1", "l2", "l1l2"                                       Keras's defaults, 0.01 each
 *   {"className": "L1L2", "config": {"l1": 0, "l2": 0.01}}   tfjs' own form (as model.json has it)
 * The penalty counts in the loss and its gradient (see layer-losses.ts). tfjs-layers throws when
 * a layer with an activityRegularizer is applied, so that argument is refused here, by name.
 */
import * as tf from '@tensorflow/tfjs';

const EXPECTED = 'an object such as {"l2": 0.01} or {"l1": 0.001, "l2": 0.01}, or "l1", "l2", "l1l2"';
const KERAS_DEFAULT = 0.01;

/** `args` with every *Regularizer argument given as JSON replaced by a tfjs regularizer; throws naming a bad one. */
export function resolveRegularizerArgs(args: Record<string, unknown>): Record<string, unknown> {
  const resolved = { ...args };
  for (const [key, value] of Object.entries(args)) {
    if (!key.endsWith('Regularizer') || value === undefined || value === null) continue;
    if (key === 'activityRegularizer') {
      throw new Error('activityRegularizer is not supported: TensorFlow.js layers cannot apply a layer that has one (use kernelRegularizer or biasRegularizer)');
    }
    resolved[key] = regularizerFrom(key, value);
  }
  return resolved;
}

function regularizerFrom(key: string, value: unknown): unknown {
  if (value instanceof tf.serialization.Serializable) return value; // a library caller's own regularizer
  if (typeof value === 'string') {
    if (value === 'l1') return tf.regularizers.l1({ l1: KERAS_DEFAULT });
    if (value === 'l2') return tf.regularizers.l2({ l2: KERAS_DEFAULT });
    if (value === 'l1l2') return tf.regularizers.l1l2({ l1: KERAS_DEFAULT, l2: KERAS_DEFAULT });
    throw new Error(`${key}: expected ${EXPECTED}, found ${JSON.stringify(value)}`);
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${key}: expected ${EXPECTED}, found ${JSON.stringify(value)}`);
  const record = value as Record<string, unknown>;
  if ('className' in record) return value; // tfjs deserialises its own form (and names an unknown class)
  const extra = Object.keys(record).filter((k) => k !== 'l1' && k !== 'l2');
  const factor = (name: 'l1' | 'l2') => {
    const v = record[name] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${key}.${name}: expected a number >= 0, found ${JSON.stringify(v)}`);
    return v;
  };
  if (extra.length > 0 || Object.keys(record).length === 0) throw new Error(`${key}: expected ${EXPECTED}, found ${JSON.stringify(value)}`);
  return tf.regularizers.l1l2({ l1: factor('l1'), l2: factor('l2') });
}
