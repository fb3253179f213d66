/**
 * The layer types a config may name: the factory functions of `tf.layers` in
 * @tensorflow/tfjs-layers, read from the library itself so the list cannot drift from it.
 */
import * as tfl from '@tensorflow/tfjs-layers';

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

/** Every valid `model.layers[i].type`, sorted (e.g. "conv2d", "dense", "maxPooling2d"). */
export const LAYER_TYPES: readonly string[] = Object.freeze(
  Object.entries(tfl.layers as unknown as Record<string, unknown>)
    .filter(([name, value]) => isLayerFactory(name, value))
    .map(([name]) => name)
    .sort(),
);

const LAYER_TYPE_SET: ReadonlySet<string> = new Set(LAYER_TYPES);

export function isLayerType(type: string): boolean {
  return LAYER_TYPE_SET.has(type);
}
