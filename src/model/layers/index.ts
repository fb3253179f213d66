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
