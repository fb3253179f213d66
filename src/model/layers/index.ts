/**
 * The project's own layer types, which a config names like tf.layers' ("type":
 * "transformerEncoder"), and the one place that turns a layer type and its arguments into a
 * layer: tf.layers' factories first, then these. Importing this module registers their classes
 * for serialisation (model.json, tf.loadLayersModel).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { MultiHeadSelfAttention, type MultiHeadSelfAttentionArgs } from './multi-head-self-attention.js';
import { TokenAndPositionEmbedding, type TokenAndPositionEmbeddingArgs } from './token-and-position-embedding.js';
import { TransformerEncoder, type TransformerEncoderArgs } from './transformer-encoder.js';
import { resolveRegularizerArgs } from '../regularizer-args.js';

export { MultiHeadSelfAttention, TokenAndPositionEmbedding, TransformerEncoder };

export type LayerFactory = (args: Record<string, unknown>) => tfl.layers.Layer;

/** Custom layer types by config name (the camelCase of the class, as tf.layers' factories). */
export const CUSTOM_LAYERS: Readonly<Record<string, LayerFactory>> = {
  tokenAndPositionEmbedding: (args) => new TokenAndPositionEmbedding(args as unknown as TokenAndPositionEmbeddingArgs),
  multiHeadSelfAttention: (args) => new MultiHeadSelfAttention(args as unknown as MultiHeadSelfAttentionArgs),
  transformerEncoder: (args) => new TransformerEncoder(args as unknown as TransformerEncoderArgs),
};

/** The factory of a layer type: tf.layers' own, else a custom one; undefined for an unknown type. */
export function layerFactory(type: string): LayerFactory | undefined {
  const builtin = (tfl.layers as unknown as Record<string, unknown>)[type];
  if (typeof builtin === 'function' && /^[a-z]/.test(type)) return builtin as LayerFactory;
  return Object.hasOwn(CUSTOM_LAYERS, type) ? CUSTOM_LAYERS[type] : undefined;
}

/**
 * The wrappers bidirectional and timeDistributed take a layer object, which JSON cannot hold: in
 * a config their `layer` is a layer spec ({"type": "lstm", "units": 8}), built here under a name
 * derived from the wrapper's (tfjs would number it after the layers built before in the thread,
 * and parameter names must be the same in every thread).
 */
export function withNestedLayer(args: Record<string, unknown>): Record<string, unknown> {
  const spec = args.layer;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec) || typeof (spec as { type?: unknown }).type !== 'string') return args;
  const { type, ...innerArgs } = spec as { type: string; [arg: string]: unknown };
  const factory = layerFactory(type);
  if (factory === undefined) throw new Error(`its layer has an unknown layer type "${type}"`);
  const name = `${String(args.name ?? 'wrapper')}_${type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()}`;
  return { ...args, layer: factory({ name, ...withNestedLayer(resolveRegularizerArgs(innerArgs)) }) };
}
