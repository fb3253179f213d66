/**
 * What each layer type accepts for its arguments, checked when the config is validated, before
 * any data is read or weight allocated. tfjs-layers asserts some arguments itself (units,
 * filters, padding names) but accepts others silently and then breaks or misbehaves: a
 * `kernelSize` of 0 builds a layer whose output is all zeros, `strides` 0 fails at the first
 * step with "Invalid typed array length: Infinity", a dropout `rate` of 1.5 or "x" trains
 * without error, `repeatVector` n 0 gives an empty output, `reLU` maxValue -1 fails in the first
 * step. The rules below refuse those with the field's path and what was expected.
 *
 * One entry per layer type: adding a layer is one line in LAYER_RULES. Arguments a layer does
 * not list are left to tfjs (and to the unknown-argument check in layers.ts); types without an
 * entry are checked by tfjs alone, when the model is built symbolically (limits.ts).
 */

/** Largest count or size a layer argument may give (units, filters, kernel sizes, strides, ...). */
export const MAX_LAYER_DIMENSION = 1 << 24;
const MAX_DIMENSION_TEXT = MAX_LAYER_DIMENSION.toLocaleString('en-US');

export interface ArgRule {
  /** What a valid value is, as the message's "expected ..." part. */
  readonly expected: string;
  readonly ok: (value: unknown) => boolean;
}

export interface LayerRules {
  /** Arguments the layer cannot do without (tfjs would use undefined and misbehave, or throw a stack). */
  readonly required?: readonly string[];
  readonly args: Readonly<Record<string, ArgRule>>;
}

const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function rule(expected: string, ok: (value: unknown) => boolean): ArgRule {
  return { expected, ok };
}

/** A count such as units or filters. */
const count = rule(`an integer from 1 to ${MAX_DIMENSION_TEXT}`, (v) => isInteger(v) && v >= 1 && v <= MAX_LAYER_DIMENSION);

/** kernelSize, strides, poolSize, dilationRate, size: one positive integer, or one per spatial dimension. */
function sizes(dims: number): ArgRule {
  const one = (v: unknown) => isInteger(v) && v >= 1 && v <= MAX_LAYER_DIMENSION;
  const expected =
    dims === 1
      ? `an integer from 1 to ${MAX_DIMENSION_TEXT}`
      : `an integer from 1 to ${MAX_DIMENSION_TEXT}, or an array of ${dims} such integers`;
  return rule(expected, (v) => one(v) || (Array.isArray(v) && (v.length === dims || (dims === 1 && v.length === 1)) && v.every(one)));
}

/** zeroPadding2d padding, cropping2D cropping: non-negative integers, possibly nested in arrays. */
const margins = rule('a non-negative integer or (nested) arrays of them, e.g. 1, [1, 2] or [[1, 1], [2, 2]]', function ok(v: unknown): boolean {
  if (isInteger(v)) return v >= 0 && v <= MAX_LAYER_DIMENSION;
  return Array.isArray(v) && v.length >= 1 && v.length <= 3 && v.every((x) => (isInteger(x) ? x >= 0 && x <= MAX_LAYER_DIMENSION : Array.isArray(x) && x.length === 2 && x.every((y) => isInteger(y) && y >= 0 && y <= MAX_LAYER_DIMENSION)));
});

/** Dropout rates: 1 would drop everything (tfjs divides by 1 - rate). */
const rate = rule('a number >= 0 and < 1', (v) => isFiniteNumber(v) && v >= 0 && v < 1);
const fraction = rule('a number from 0 to 1', (v) => isFiniteNumber(v) && v >= 0 && v <= 1);
const positive = rule('a number > 0', (v) => isFiniteNumber(v) && v > 0);
const nonNegative = rule('a number >= 0', (v) => isFiniteNumber(v) && v >= 0);
const finite = rule('a number', isFiniteNumber);
const axis = rule('an integer (an axis, -1 for the last)', (v) => isInteger(v) && Math.abs(v) <= 8);
const bool = rule('true or false', (v) => typeof v === 'boolean');

function oneOf(...values: string[]): ArgRule {
  return rule(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, (v) => typeof v === 'string' && values.includes(v));
}

const padding = oneOf('valid', 'same');
const dataFormat = oneOf('channelsLast', 'channelsFirst');

/** reshape targetShape: positive integers, at most one -1 (inferred). */
const targetShape = rule('an array of positive integers, with at most one -1 (inferred), e.g. [7, 7, 64]', (v) => {
  if (!Array.isArray(v) || v.length === 0 || v.length > 8) return false;
  return v.every((d) => isInteger(d) && (d === -1 || (d >= 1 && d <= MAX_LAYER_DIMENSION))) && v.filter((d) => d === -1).length <= 1;
});

/** permute dims: a permutation of 1..n. */
const permutation = rule('a permutation of 1..n (the input dimensions, the batch dimension left out), e.g. [2, 1]', (v) => {
  if (!Array.isArray(v) || v.length === 0 || v.length > 8) return false;
  return [...v].sort((a, b) => Number(a) - Number(b)).every((d, i) => d === i + 1);
});

/** The layer a wrapper wraps: a layer object, as in model.layers. */
const layerSpec = rule('a layer object such as {"type": "lstm", "units": 8}', (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string');

/**
 * TensorFlow.js has no gradient for dilated convolutions (Conv2D, Conv3D and depthwise gradients
 * assert dilations of 1), and tfjs-layers implements no "causal" padding: such a layer would
 * build and then fail at the first training step.
 */
const noDilation = rule('1 (TensorFlow.js has no gradient for dilated convolutions, so they cannot train)', (v) => v === 1 || (Array.isArray(v) && v.length >= 1 && v.length <= 3 && v.every((d) => d === 1)));
const convPadding = rule('one of "valid", "same" (tfjs-layers does not implement "causal")', (v) => v === 'valid' || v === 'same');

function conv(dims: number, extra: Record<string, ArgRule> = {}): LayerRules {
  return {
    required: ['filters', 'kernelSize'],
    args: {
      filters: count,
      kernelSize: sizes(dims),
      strides: sizes(dims),
      dilationRate: noDilation,
      padding: dims === 1 ? convPadding : padding,
      dataFormat,
      useBias: bool,
      ...extra,
    },
  };
}

function pool(dims: number): LayerRules {
  // tfjs' 1D pooling layers take no dataFormat.
  return { args: { poolSize: sizes(dims), strides: sizes(dims), padding, ...(dims > 1 ? { dataFormat } : {}) } };
}

const globalPool: LayerRules = { args: { dataFormat } };
const globalPool1d: LayerRules = { args: {} };

const recurrent: LayerRules = {
  required: ['units'],
  args: {
    units: count,
    dropout: rate,
    recurrentDropout: rate,
    useBias: bool,
    returnSequences: bool,
    returnState: bool,
    goBackwards: bool,
    stateful: bool,
    unroll: bool,
  },
};

function dropoutLike(): LayerRules {
  return { required: ['rate'], args: { rate } };
}

/** The argument rules of each layer type (tf.layers factory name). */
export const LAYER_RULES: Readonly<Record<string, LayerRules>> = {
  dense: { required: ['units'], args: { units: count, useBias: bool } },
  conv1d: conv(1),
  conv2d: conv(2),
  conv2dTranspose: conv(2),
  conv3d: conv(3),
  conv3dTranspose: conv(3),
  separableConv2d: conv(2, { depthMultiplier: count }),
  depthwiseConv2d: {
    required: ['kernelSize'],
    args: { kernelSize: sizes(2), depthMultiplier: count, strides: sizes(2), dilationRate: noDilation, padding, dataFormat, useBias: bool },
  },
  maxPooling1d: pool(1),
  maxPool1d: pool(1),
  maxPooling2d: pool(2),
  maxPool2d: pool(2),
  maxPooling3d: pool(3),
  averagePooling1d: pool(1),
  avgPool1d: pool(1),
  avgPooling1d: pool(1),
  averagePooling2d: pool(2),
  avgPool2d: pool(2),
  avgPooling2d: pool(2),
  averagePooling3d: pool(3),
  avgPool3d: pool(3),
  avgPooling3d: pool(3),
  globalAveragePooling1d: globalPool1d,
  globalAveragePooling2d: globalPool,
  globalMaxPooling1d: globalPool1d,
  globalMaxPool1d: globalPool1d,
  globalMaxPooling2d: globalPool,
  globalMaxPool2d: globalPool,
  dropout: dropoutLike(),
  spatialDropout1d: dropoutLike(),
  alphaDropout: dropoutLike(),
  gaussianDropout: dropoutLike(),
  gaussianNoise: { required: ['stddev'], args: { stddev: nonNegative } },
  lstm: recurrent,
  gru: recurrent,
  simpleRNN: recurrent,
  embedding: { required: ['inputDim', 'outputDim'], args: { inputDim: count, outputDim: count, maskZero: bool } },
  batchNormalization: { args: { axis, momentum: fraction, epsilon: positive, center: bool, scale: bool } },
  layerNormalization: { args: { axis, epsilon: positive, center: bool, scale: bool } },
  flatten: { args: { dataFormat } },
  reshape: { required: ['targetShape'], args: { targetShape } },
  repeatVector: { required: ['n'], args: { n: count } },
  permute: { required: ['dims'], args: { dims: permutation } },
  upSampling2d: { args: { size: sizes(2), dataFormat } },
  zeroPadding2d: { args: { padding: margins, dataFormat } },
  cropping2D: { required: ['cropping'], args: { cropping: margins, dataFormat } },
  activation: { required: ['activation'], args: {} },
  leakyReLU: { args: { alpha: finite } },
  reLU: { args: { maxValue: nonNegative } },
  thresholdedReLU: { args: { theta: nonNegative } },
  softmax: { args: { axis: rule('-1 (tfjs computes a softmax along the last axis only)', (v) => v === -1) } },
  elu: { args: { alpha: rule('1 (tfjs supports no other ELU alpha)', (v) => v === 1) } },
  // Wrappers: `layer` is a layer spec such as {"type": "lstm", "units": 8} (model/layers/index.ts).
  bidirectional: { required: ['layer'], args: { layer: layerSpec, mergeMode: oneOf('sum', 'mul', 'concat', 'ave') } },
  timeDistributed: { required: ['layer'], args: { layer: layerSpec } },
  // The project's own layers (src/model/layers/).
  tokenAndPositionEmbedding: { required: ['vocabularySize', 'sequenceLength', 'embeddingDim'], args: { vocabularySize: count, sequenceLength: count, embeddingDim: count } },
  multiHeadSelfAttention: { required: ['numHeads', 'keyDim'], args: { numHeads: count, keyDim: count } },
  transformerEncoder: { required: ['numHeads', 'feedForwardDim'], args: { numHeads: count, feedForwardDim: count, keyDim: count, epsilon: positive } },
};

/** Rules every layer follows (LayerArgs). */
export const COMMON_ARG_RULES: Readonly<Record<string, ArgRule>> = {
  name: rule('a layer name of 1 to 255 letters, digits, "_", "-" or "."', (v) => typeof v === 'string' && /^[A-Za-z0-9_.-]{1,255}$/.test(v)),
  trainable: bool,
};

export interface LayerArgProblem {
  /** The argument's name. */
  arg: string;
  expected: string;
  /** The value found (undefined: missing). */
  found: unknown;
}

/** The first problem of a layer's arguments under LAYER_RULES and COMMON_ARG_RULES, if any. */
export function checkLayerRules(type: string, args: Readonly<Record<string, unknown>>): LayerArgProblem | undefined {
  for (const [arg, r] of Object.entries(COMMON_ARG_RULES)) {
    if (Object.hasOwn(args, arg) && !r.ok(args[arg])) return { arg, expected: r.expected, found: args[arg] };
  }
  const rules = Object.hasOwn(LAYER_RULES, type) ? LAYER_RULES[type] : undefined;
  if (rules === undefined) return undefined;
  for (const arg of rules.required ?? []) {
    if (args[arg] === undefined || args[arg] === null) {
      const expected = rules.args[arg]?.expected ?? (arg === 'activation' ? 'an activation name' : 'a value');
      return { arg, expected, found: args[arg] === null ? null : undefined };
    }
  }
  for (const [arg, r] of Object.entries(rules.args)) {
    if (Object.hasOwn(args, arg) && !r.ok(args[arg])) return { arg, expected: r.expected, found: args[arg] };
  }
  return undefined;
}
