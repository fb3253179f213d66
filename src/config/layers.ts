/**
 * The layer types a config may name: the factory functions of `tf.layers` in
 * @tensorflow/tfjs-layers, read from the library itself so the list cannot drift from it.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { CUSTOM_LAYERS, layerFactory, withNestedLayer } from '../model/layers/index.js';

/**
 * Functions of `tf.layers` that are not layers one can stack:
 * - `input` returns a SymbolicTensor (functional API), not a layer;
 * - the `*Cell` factories and `stackedRNNCells` build RNN cells, which only live inside an
 *   `rnn` layer and cannot be written as plain JSON arguments anyway.
 * Classes exported there (`Layer`, `RNN`, `RNNCell`) are skipped because they start with a
 * capital letter: factories are camelCase.
 */
const NOT_LAYERS = new Set(['input', 'stackedRNNCells']);

function isLayerFactory(name: string, value: unknown): boolean {
  return (
    typeof value === 'function' &&
    /^[a-z]/.test(name) &&
    !NOT_LAYERS.has(name) &&
    !name.endsWith('Cell')
  );
}

/** Every valid `model.layers[i].type`, sorted (e.g. "conv2d", "dense", "maxPooling2d"), the project's own layers included. */
export const LAYER_TYPES: readonly string[] = Object.freeze(
  [
    ...Object.entries(tfl.layers as unknown as Record<string, unknown>)
      .filter(([name, value]) => isLayerFactory(name, value))
      .map(([name]) => name),
    ...Object.keys(CUSTOM_LAYERS),
  ].sort(),
);

const LAYER_TYPE_SET: ReadonlySet<string> = new Set(LAYER_TYPES);

export function isLayerType(type: string): boolean {
  return LAYER_TYPE_SET.has(type);
}

/**
 * Arguments of every layer (tfjs LayerArgs). Some are read only on a model's first layer, so a
 * probe of a later layer would not see them; they are accepted everywhere. `inputShape` and
 * `batchInputShape` are refused by the schema before this check.
 */
const COMMON_LAYER_ARGS: readonly string[] = ['name', 'trainable', 'batchSize', 'dtype', 'inputDType', 'weights'];
const INTERNAL_LAYER_ARGS: ReadonlySet<string> = new Set([...COMMON_LAYER_ARGS, 'inputShape', 'batchInputShape']);

export interface LayerArgsCheck {
  /** The arguments given that the factory never reads, e.g. a misspelt `activaton`. */
  unknown: string[];
  /** The factory's own arguments (those it read), for "did you mean" and listings. */
  known: string[];
  /** False when the factory threw: only `known` arguments read before the throw are listed. */
  complete: boolean;
}

/**
 * Which of `args` the tf.layers factory `type` ignores. tfjs does not complain about arguments
 * it does not know (`{"type": "dense", "units": 10, "activaton": "relu"}` silently builds a
 * linear layer), so the layer is constructed once on a proxy of the arguments that records
 * which ones the constructor reads. Construction allocates no weights (that happens when the
 * layer is built into a model) and takes microseconds.
 *
 * Returns undefined when this cannot be told: the constructor copies its arguments wholesale.
 * When it throws (a missing or bad argument, reported when the model is built), `complete` is
 * false and `known` holds the arguments read before it threw.
 */
export function checkLayerArgs(type: string, args: Readonly<Record<string, unknown>>): LayerArgsCheck | undefined {
  const factory = layerFactory(type);
  if (factory === undefined) return undefined;
  const read = new Set<string>();
  let wholesale = false;
  // A copy: tfjs may write into its arguments (reshape replaces -1 in targetShape by null).
  let target: Record<string, unknown> = { name: 'config_check', ...structuredClone(args) };
  // A wrapper's layer spec becomes a layer first, as the builder does; a bad one is the builder's to report.
  try {
    target = withNestedLayer(target);
  } catch {
    return { unknown: [], known: [], complete: false };
  }
  const proxy = new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(t, key, receiver) as unknown;
    },
    has(t, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.has(t, key);
    },
    ownKeys(t) {
      wholesale = true;
      return Reflect.ownKeys(t);
    },
  });
  let complete = true;
  try {
    factory(proxy as Record<string, unknown>);
  } catch {
    complete = false;
  }
  if (wholesale) return undefined;
  const known = [...read].filter((key) => !INTERNAL_LAYER_ARGS.has(key));
  const unknown = Object.keys(args).filter((key) => !read.has(key) && !COMMON_LAYER_ARGS.includes(key));
  return { unknown, known, complete };
}

/**
 * tfjs' activation names (ActivationIdentifier in tfjs-layers 4.22), kept to those this tfjs
 * accepts so the list cannot name one it lacks. tfjs' own error for an unknown one is several
 * lines about porting Python code.
 */
export const ACTIVATIONS: readonly string[] = Object.freeze(
  ['elu', 'hardSigmoid', 'linear', 'relu', 'relu6', 'selu', 'sigmoid', 'softmax', 'softplus', 'softsign', 'tanh', 'swish', 'mish', 'gelu', 'gelu_new'].filter(
    (name) => {
      try {
        tfl.layers.activation({ activation: name as never, name: 'config_check' });
        return true;
      } catch {
        return false;
      }
    },
  ),
);

/** Layer arguments whose value names an activation. */
export const ACTIVATION_ARGS: readonly string[] = ['activation', 'recurrentActivation'];

export function isActivation(name: string): boolean {
  return ACTIVATIONS.includes(name);
}
