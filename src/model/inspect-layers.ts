/**
 * The model of a config, built symbolically (no weight allocated) before anything is read or
 * allocated: what tfjs refuses to build, each layer's weights and outputs, and what the run's
 * model would take in memory, against MEMORY_SHARE of this machine's (config/limits.ts).
 * Used by the config schema (model.layers) and by setup.ts (a model.topology, once built).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { layerName } from './layer-name.js';
import { layerFactory, withNestedLayer } from './layers/index.js';
import { MEMORY_SHARE, formatBytes, formatCount, machineMemory } from '../config/limits.js';
import { resolveRegularizerArgs } from './regularizer-args.js';

export interface LayerSize {
  type: string;
  /** Weights the layer adds. */
  params: number;
  /** Values of its output, per sample. */
  outputs: number;
  outputShape: (number | null)[];
}

export type ModelInspection =
  | { ok: true; params: number; layers: LayerSize[] }
  /** `arg`: the argument the problem is about, when tfjs' message names its value. */
  | { ok: false; index: number; message: string; arg?: string };

function product(values: readonly (number | null)[]): number {
  return values.reduce<number>((p, d) => p * (d ?? 1), 1);
}

/**
 * tfjs' messages can run over several lines (the Python porting advice after "Unknown
 * initializer: foo. This may be due to one of the following reasons:"): the first sentence says it.
 */
export function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/\s*This may be due to .*$/, '').trim();
}

function formatShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'any' : String(d))).join(', ')}]`;
}

/**
 * A clearer message for tfjs' "Negative dimension size caused by adding layer conv2d_1 with
 * input shape [,28,28,1]": which window does not fit which input.
 */
function windowTooLarge(type: string, args: Record<string, unknown>, input: readonly (number | null)[]): string | undefined {
  const arg = args.kernelSize !== undefined ? 'kernelSize' : args.poolSize !== undefined ? 'poolSize' : undefined;
  if (arg === undefined || args.dataFormat === 'channelsFirst') return undefined;
  const spatial = input.slice(0, -1);
  const given = args[arg];
  const window = Array.isArray(given) ? given : spatial.map(() => given);
  if (window.length !== spatial.length) return undefined;
  const padding = typeof args.padding === 'string' ? args.padding : 'valid';
  const what = arg === 'kernelSize' ? 'kernel' : 'pool';
  return `${arg} ${formatShape(window as number[])} does not fit its input ${formatShape(input)} with padding "${padding}"; expected a ${what} of at most ${spatial.map((d) => d ?? '?').join('x')}, or padding "same"`;
}

/** The argument whose value tfjs' message quotes ("Unknown initializer: foo"), if any. */
function argNamed(message: string, args: Record<string, unknown>): string | undefined {
  const match = /^Unknown (?:initializer|regularizer|constraint|activation|loss|layer): (\S+?)\.?$/.exec(message);
  if (!match) return undefined;
  return Object.keys(args).find((key) => args[key] === match[1]);
}

/**
 * Builds the layers as the trainer will (tf.sequential, the same names), but on symbolic
 * tensors and with Layer.addWeight replaced by one that only counts: no weight is allocated, so
 * a dense layer of a billion units costs nothing here. Yields each layer's weight count and
 * output size, or the first layer tfjs refuses to build (with its first message line).
 */
export function inspectLayers(inputShape: readonly number[], layers: readonly { type: string; [arg: string]: unknown }[]): ModelInspection {
  const LayerClass = tfl.layers.Layer as unknown as { prototype: { addWeight: unknown } };
  const original = LayerClass.prototype.addWeight;
  let counted = 0;
  LayerClass.prototype.addWeight = function countOnly(name: string, shape: readonly number[], dtype?: string, _init?: unknown, _reg?: unknown, trainable?: boolean) {
    counted += product(shape);
    return { name, shape: [...shape], dtype: dtype ?? 'float32', trainable: trainable ?? true, read: () => { throw new Error('not allocated'); } };
  };
  const sizes: LayerSize[] = [];
  /** Layer names, as build-model.ts gives them: tfjs refuses a model with two alike, but only when it compiles it, in a replica. */
  const names = new Map<string, string>();
  try {
    const model = tfl.sequential();
    for (let index = 0; index < layers.length; index++) {
      const { type, ...args } = layers[index]!;
      const factory = layerFactory(type);
      if (factory === undefined) return { ok: false, index, message: `unknown layer type "${type}"` };
      const before = counted;
      const input: (number | null)[] = index === 0 ? [...inputShape] : sizes[index - 1]!.outputShape;
      const name = typeof args.name === 'string' ? args.name : layerName(type, index);
      const taken = names.get(name);
      if (taken !== undefined) {
        return { ok: false, index, arg: 'name', message: `cannot build ${type} layer: the name "${name}" is already ${taken} (layer names must be unique)` };
      }
      names.set(name, `model.layers[${index}]'s`);
      // tf.sequential names the model's input after the first layer.
      if (index === 0) names.set(`${name}_input`, "the model input's");
      try {
        // A copy: tfjs may write into its arguments (reshape replaces -1 in targetShape by null).
        const layerArgs: Record<string, unknown> = { name: layerName(type, index), ...structuredClone(args) };
        if (index === 0) layerArgs.inputShape = [...inputShape];
        model.add(factory(withNestedLayer(resolveRegularizerArgs(layerArgs))));
      } catch (error) {
        const text = firstLine(error instanceof Error ? error.message : String(error));
        const clearer = /Negative dimension size/.test(text) ? windowTooLarge(type, args, input) : undefined;
        const arg = argNamed(text, args);
        return { ok: false, index, message: `cannot build ${type} layer: ${clearer ?? text}`, ...(arg === undefined ? {} : { arg }) };
      }
      const shape = [...(model.outputs[0]!.shape as (number | null)[])].slice(1);
      if (shape.some((d) => d !== null && (!Number.isFinite(d) || d < 1))) {
        return { ok: false, index, message: `cannot build ${type} layer: its output shape would be ${formatShape(shape)} (every size must be at least 1)` };
      }
      // tfjs computes a reshape's output from targetShape alone; a size mismatch fails at the first step.
      const inferred = shape.includes(null); // a -1 in targetShape: the input's size must divide
      if (type === 'reshape' && !input.includes(null) && (inferred ? product(input) % product(shape) !== 0 : product(shape) !== product(input))) {
        return {
          ok: false,
          index,
          arg: 'targetShape',
          message: inferred
            ? `cannot build reshape layer: targetShape ${formatShape(shape)} cannot hold its input ${formatShape(input)}: ${formatCount(product(input))} values are not a multiple of ${formatCount(product(shape))}`
            : `cannot build reshape layer: targetShape ${formatShape(shape)} holds ${formatCount(product(shape))} values, its input ${formatShape(input)} has ${formatCount(product(input))}`,
        };
      }
      sizes.push({ type, params: counted - before, outputs: product(shape), outputShape: shape });
    }
    return { ok: true, params: counted, layers: sizes };
  } finally {
    LayerClass.prototype.addWeight = original;
  }
}

/** A replica thread with its own TensorFlow.js, before any weight (256 replicas of xor: 7.1 GB). */
export const REPLICA_BASE_BYTES = 28e6;

/** Float32 arrays of the parameters' length that the optimizer keeps (an upper bound per optimizer). */
export const OPTIMIZER_STATE_ARRAYS: Readonly<Record<string, number>> = { sgd: 1, adam: 2, adamw: 2, rmsprop: 3 };

export interface MemoryEstimate {
  /** Bytes of parameters, gradients and optimizer state. */
  paramBytes: number;
  /** Bytes of the activations of one global batch, forward and backward. */
  activationBytes: number;
  total: number;
  limit: number;
}

/**
 * What a run's model takes, roughly: every parameter is a float32 held once by the coordinator
 * (shared), once per optimizer state array, and three times per replica (its gradient slot in
 * shared memory, and its own TensorFlow.js weights and gradients), and each replica thread
 * takes REPLICA_BASE_BYTES before any weight; every layer output of a batch
 * sample is held twice (forward value and its gradient).
 */
export function estimateMemory(params: number, activationsPerSample: number, replicas: number, stateArrays: number, batch: number): MemoryEstimate {
  const paramBytes = 4 * params * (1 + stateArrays + 3 * replicas) + REPLICA_BASE_BYTES * replicas;
  const activationBytes = 4 * 2 * activationsPerSample * batch;
  return { paramBytes, activationBytes, total: paramBytes + activationBytes, limit: MEMORY_SHARE * machineMemory() };
}

/**
 * For a model known only once built (a model.json topology): whether its parameters, with
 * gradients and optimizer state for `replicas`, fit; checked before the shared buffers and the
 * replicas are allocated. Returns the message of a refusal, or undefined.
 */
export function paramMemoryProblem(params: number, replicas: number, optimizer: string): string | undefined {
  const memory = estimateMemory(params, 0, replicas, OPTIMIZER_STATE_ARRAYS[optimizer] ?? 3, 0);
  if (memory.total <= memory.limit) return undefined;
  return `the model has ${formatCount(params)} parameters, about ${formatBytes(memory.total)} with gradients and ${optimizer} state for ${replicas} replica${replicas === 1 ? '' : 's'}; the limit is ${formatBytes(memory.limit)}, half of this machine's memory`;
}
