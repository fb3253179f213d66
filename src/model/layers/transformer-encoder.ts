/**
 * TransformerEncoder: one encoder block of a Transformer, post-norm as in Vaswani et al. 2017 and
 * Keras' text-classification example: x = LayerNorm(x + MultiHeadSelfAttention(x));
 * x = LayerNorm(x + Dense(Dense(x, feedForwardDim, relu), features)). Input and output
 * [batch, length, features]. One layer so that a sequential config can hold the residual
 * connections; registered for serialisation.
 */
import * as tf from '@tensorflow/tfjs';
import { addAttentionWeights, selfAttention, sequenceShape, type AttentionWeights } from './multi-head-self-attention.js';

export interface TransformerEncoderArgs {
  numHeads: number;
  /** Width of the feed-forward network's hidden layer. */
  feedForwardDim: number;
  /** Size of each attention head; default features / numHeads. */
  keyDim?: number;
  /** Layer normalisation's epsilon; default 1e-6 (Keras' example). */
  epsilon?: number;
  name?: string;
  trainable?: boolean;
}

interface BlockWeights {
  attention: AttentionWeights;
  norm1Gamma: tf.LayerVariable;
  norm1Beta: tf.LayerVariable;
  ffnKernel1: tf.LayerVariable;
  ffnBias1: tf.LayerVariable;
  ffnKernel2: tf.LayerVariable;
  ffnBias2: tf.LayerVariable;
  norm2Gamma: tf.LayerVariable;
  norm2Beta: tf.LayerVariable;
}

function layerNorm(x: tf.Tensor, gamma: tf.LayerVariable, beta: tf.LayerVariable, epsilon: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, epsilon))), gamma.read()), beta.read());
}

export class TransformerEncoder extends tf.layers.Layer {
  static readonly className = 'TransformerEncoder';
  private readonly numHeads: number;
  private readonly feedForwardDim: number;
  private readonly keyDimArg: number | undefined;
  private readonly epsilon: number;
  private keyDim = 0;
  private block?: BlockWeights;

  constructor(args: TransformerEncoderArgs) {
    super(args);
    this.numHeads = args.numHeads;
    this.feedForwardDim = args.feedForwardDim;
    this.keyDimArg = args.keyDim ?? undefined;
    this.epsilon = args.epsilon ?? 1e-6;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const features = sequenceShape('transformerEncoder', inputShape)[2]!;
    this.keyDim = this.keyDimArg ?? Math.floor(features / this.numHeads);
    if (this.keyDim < 1) throw new Error(`transformerEncoder: ${features} features cannot be split into numHeads ${this.numHeads} heads; give keyDim`);
    const ones = () => tf.initializers.ones();
    const zeros = () => tf.initializers.zeros();
    const glorot = () => tf.initializers.glorotUniform({});
    const attention = addAttentionWeights((name, shape, init) => this.addWeight(name, shape, 'float32', init), features, this.numHeads, this.keyDim);
    this.block = {
      attention,
      norm1Gamma: this.addWeight('norm1_gamma', [features], 'float32', ones()),
      norm1Beta: this.addWeight('norm1_beta', [features], 'float32', zeros()),
      ffnKernel1: this.addWeight('ffn1_kernel', [features, this.feedForwardDim], 'float32', glorot()),
      ffnBias1: this.addWeight('ffn1_bias', [this.feedForwardDim], 'float32', zeros()),
      ffnKernel2: this.addWeight('ffn2_kernel', [this.feedForwardDim, features], 'float32', glorot()),
      ffnBias2: this.addWeight('ffn2_bias', [features], 'float32', zeros()),
      norm2Gamma: this.addWeight('norm2_gamma', [features], 'float32', ones()),
      norm2Beta: this.addWeight('norm2_beta', [features], 'float32', zeros()),
    };
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return sequenceShape('transformerEncoder', inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const b = this.block!;
      const [, length, features] = x.shape as [number, number, number];
      const attended = layerNorm(tf.add(x, selfAttention(x, b.attention, this.numHeads, this.keyDim)), b.norm1Gamma, b.norm1Beta, this.epsilon);
      const rows = tf.reshape(attended, [-1, features]);
      const hidden = tf.relu(tf.add(tf.matMul(rows, b.ffnKernel1.read()), b.ffnBias1.read()));
      const fed = tf.reshape(tf.add(tf.matMul(hidden, b.ffnKernel2.read()), b.ffnBias2.read()), [-1, length, features]);
      return layerNorm(tf.add(attended, fed), b.norm2Gamma, b.norm2Beta, this.epsilon);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numHeads: this.numHeads,
      feedForwardDim: this.feedForwardDim,
      ...(this.keyDimArg === undefined ? {} : { keyDim: this.keyDimArg }),
      epsilon: this.epsilon,
    };
  }
}

tf.serialization.registerClass(TransformerEncoder);
