/**
 * TokenAndPositionEmbedding: the input layer of a Transformer. Integer tokens [batch, length]
 * become vectors [batch, length, embeddingDim]: a learned vector per token plus a learned vector
 * per position (as Keras' TokenAndPositionEmbedding example and keras_nlp's layer). tfjs-layers
 * has none; registered for serialisation, so an exported model.json names it and
 * tf.loadLayersModel reads it back once ringtrain is imported.
 */
import * as tf from '@tensorflow/tfjs';

export interface TokenAndPositionEmbeddingArgs {
  /** Number of distinct tokens: inputs are integers in [0, vocabularySize). */
  vocabularySize: number;
  /** The sequence length the layer takes (one position vector each). */
  sequenceLength: number;
  embeddingDim: number;
  name?: string;
  trainable?: boolean;
}

export class TokenAndPositionEmbedding extends tf.layers.Layer {
  static readonly className = 'TokenAndPositionEmbedding';
  private readonly vocabularySize: number;
  private readonly sequenceLength: number;
  private readonly embeddingDim: number;
  private tokens?: tf.LayerVariable;
  private positions?: tf.LayerVariable;

  constructor(args: TokenAndPositionEmbeddingArgs) {
    super(args);
    this.vocabularySize = args.vocabularySize;
    this.sequenceLength = args.sequenceLength;
    this.embeddingDim = args.embeddingDim;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 2 || shape[1] !== this.sequenceLength) {
      throw new Error(`tokenAndPositionEmbedding expects inputs [batch, ${this.sequenceLength}] (sequenceLength), got [${shape.map((d) => d ?? 'any').join(', ')}]`);
    }
    // Keras' Embedding default: uniform in [-0.05, 0.05].
    const init = () => tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05 });
    this.tokens = this.addWeight('token_embeddings', [this.vocabularySize, this.embeddingDim], 'float32', init());
    this.positions = this.addWeight('position_embeddings', [this.sequenceLength, this.embeddingDim], 'float32', init());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape, this.embeddingDim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const tokens = tf.gather(this.tokens!.read(), tf.cast(x, 'int32'));
      return tf.add(tokens, this.positions!.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), vocabularySize: this.vocabularySize, sequenceLength: this.sequenceLength, embeddingDim: this.embeddingDim };
  }
}

tf.serialization.registerClass(TokenAndPositionEmbedding);
