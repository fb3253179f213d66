/**
 * MultiHeadSelfAttention: scaled dot-product attention of a sequence over itself, with
 * `numHeads` heads of size `keyDim` (Vaswani et al. 2017; Keras' MultiHeadAttention with query =
 * value = key). Input and output [batch, length, features]. tfjs-layers has no attention layer;
 * registered for serialisation. `selfAttention` is shared with the transformer encoder block.
 */
import * as tf from '@tensorflow/tfjs';

export interface MultiHeadSelfAttentionArgs {
  numHeads: number;
  /** Size of each head's queries, keys and values. */
  keyDim: number;
  name?: string;
  trainable?: boolean;
}

export interface AttentionWeights {
  queryKernel: tf.LayerVariable;
  queryBias: tf.LayerVariable;
  keyKernel: tf.LayerVariable;
  valueKernel: tf.LayerVariable;
  valueBias: tf.LayerVariable;
  outputKernel: tf.LayerVariable;
  outputBias: tf.LayerVariable;
}

/** A layer's addWeight (protected in tf.layers.Layer, so passed in by the layer). */
export type AddWeight = (name: string, shape: number[], initializer: ReturnType<typeof tf.initializers.zeros>) => tf.LayerVariable;

/**
 * Adds the projection weights of attention over `features` (glorot kernels, zero biases). Keys
 * have no bias: it adds the same amount to every score of a query, which the softmax cancels, so
 * its gradient is zero but for rounding, and Adam would turn that rounding into full-size steps
 * that differ between 1 and N replicas.
 */
export function addAttentionWeights(add: AddWeight, features: number, numHeads: number, keyDim: number): AttentionWeights {
  const width = numHeads * keyDim;
  const kernel = (name: string, shape: number[]) => add(name, shape, tf.initializers.glorotUniform({}));
  const bias = (name: string, size: number) => add(name, [size], tf.initializers.zeros());
  return {
    queryKernel: kernel('query_kernel', [features, width]),
    queryBias: bias('query_bias', width),
    keyKernel: kernel('key_kernel', [features, width]),
    valueKernel: kernel('value_kernel', [features, width]),
    valueBias: bias('value_bias', width),
    outputKernel: kernel('output_kernel', [width, features]),
    outputBias: bias('output_bias', features),
  };
}

/** softmax(Q Kᵀ / √keyDim) V per head, heads concatenated and projected back: [b, t, d] → [b, t, d]. */
export function selfAttention(x: tf.Tensor, w: AttentionWeights, numHeads: number, keyDim: number): tf.Tensor {
  const [, length, features] = x.shape as [number, number, number];
  const rows = tf.reshape(x, [-1, features]);
  // [b*t, d] · [d, h*k] → [b, h, t, k]
  const heads = (kernel: tf.LayerVariable, bias?: tf.LayerVariable) => {
    const projected = tf.matMul(rows, kernel.read());
    return tf.transpose(tf.reshape(bias ? tf.add(projected, bias.read()) : projected, [-1, length, numHeads, keyDim]), [0, 2, 1, 3]);
  };
  const q = heads(w.queryKernel, w.queryBias);
  const k = heads(w.keyKernel);
  const v = heads(w.valueKernel, w.valueBias);
  const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(keyDim));
  const context = tf.matMul(tf.softmax(scores), v); // [b, h, t, k]
  const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, numHeads * keyDim]);
  return tf.reshape(tf.add(tf.matMul(merged, w.outputKernel.read()), w.outputBias.read()), [-1, length, features]);
}

/** The [batch, length, features] input shape of a sequence layer, or an error naming the layer. */
export function sequenceShape(type: string, inputShape: tf.Shape | tf.Shape[]): tf.Shape {
  const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  if (shape.length !== 3 || shape[1] === null || shape[2] === null) {
    throw new Error(`${type} expects inputs [batch, length, features] of known length and features, got [${shape.map((d) => d ?? 'any').join(', ')}]`);
  }
  return shape;
}

export class MultiHeadSelfAttention extends tf.layers.Layer {
  static readonly className = 'MultiHeadSelfAttention';
  private readonly numHeads: number;
  private readonly keyDim: number;
  private weightsOf?: AttentionWeights;

  constructor(args: MultiHeadSelfAttentionArgs) {
    super(args);
    this.numHeads = args.numHeads;
    this.keyDim = args.keyDim;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const features = sequenceShape('multiHeadSelfAttention', inputShape)[2]!;
    this.weightsOf = addAttentionWeights((name, shape, init) => this.addWeight(name, shape, 'float32', init), features, this.numHeads, this.keyDim);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return sequenceShape('multiHeadSelfAttention', inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => selfAttention(Array.isArray(inputs) ? inputs[0]! : inputs, this.weightsOf!, this.numHeads, this.keyDim));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numHeads: this.numHeads, keyDim: this.keyDim };
  }
}

tf.serialization.registerClass(MultiHeadSelfAttention);
