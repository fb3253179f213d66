/**
 * Bounds on the sizes a config may ask for, checked before anything is read or allocated, so
 * that a typo (an extra three zeros) ends in a one-line error instead of a machine out of
 * memory or a run that never finishes. Each bound says why it is what it is.
 */
import os from 'node:os';
import * as tfl from '@tensorflow/tfjs-layers';
// No import of format.ts or schema.ts here: schema.ts reads these bounds when it loads.

// ---------------------------------------------------------------------------------------------
// The JSON document
// ---------------------------------------------------------------------------------------------

/** Nesting levels below the document (model.layers[0].padding[0][1] is 5). */
export const MAX_DEPTH = 16;
/** Characters of any string: paths are at most 4096 bytes on Linux (PATH_MAX); every other string is a short name. */
export const MAX_STRING_LENGTH = 4096;
/** Items of any array (the longest a real config has is model.layers). */
export const MAX_ARRAY_LENGTH = 1024;
/** Keys of any object (the largest a real config has are the layers' arguments). */
export const MAX_OBJECT_KEYS = 256;

export interface DocumentProblem {
  path: PropertyKey[];
  expected: string;
  /** A description of what was found, or the value itself (a string, shown shortened). */
  found: string | { value: unknown };
}

/**
 * The first place where the parsed document is deeper, longer or wider than any config needs
 * (walked before the schema, which would otherwise spend time on a million-item array). The
 * walk stops at MAX_DEPTH, so it never recurses deeper than that.
 */
export function checkDocumentLimits(json: unknown): DocumentProblem | undefined {
  const walk = (value: unknown, path: PropertyKey[]): DocumentProblem | undefined => {
    if (typeof value === 'string') {
      if (value.length > MAX_STRING_LENGTH) {
        return { path, expected: `a string of at most ${MAX_STRING_LENGTH} characters`, found: { value } };
      }
      return undefined;
    }
    if (value === null || typeof value !== 'object') return undefined;
    if (path.length >= MAX_DEPTH) {
      return { path, expected: `a value nested at most ${MAX_DEPTH} levels deep`, found: `${Array.isArray(value) ? 'an array' : 'an object'} nested deeper` };
    }
    if (Array.isArray(value)) {
      if (value.length > MAX_ARRAY_LENGTH) {
        return { path, expected: `an array of at most ${MAX_ARRAY_LENGTH} items`, found: `${value.length} items` };
      }
      for (let i = 0; i < value.length; i++) {
        const problem = walk(value[i], [...path, i]);
        if (problem) return problem;
      }
      return undefined;
    }
    const keys = Object.keys(value);
    if (keys.length > MAX_OBJECT_KEYS) {
      return { path, expected: `an object of at most ${MAX_OBJECT_KEYS} fields`, found: `${keys.length} fields` };
    }
    for (const key of keys) {
      if (key.length > MAX_STRING_LENGTH) {
        return { path, expected: `field names of at most ${MAX_STRING_LENGTH} characters`, found: `one of ${key.length}` };
      }
      const problem = walk((value as Record<string, unknown>)[key], [...path, key]);
      if (problem) return problem;
    }
    return undefined;
  };
  return walk(json, []);
}

// ---------------------------------------------------------------------------------------------
// Replicas
// ---------------------------------------------------------------------------------------------

/** Replicas per core beyond which more only time-share the cores. */
export const WORKERS_PER_CORE = 4;
/** Whatever the machine: 256 replicas of xor took 7.1 GB (about 28 MB each) and never finished an epoch. */
export const MAX_WORKERS_ANY_MACHINE = 256;

// ---------------------------------------------------------------------------------------------
// This machine
// ---------------------------------------------------------------------------------------------

/**
 * TEST-ONLY: environment variables that make the checks below see a fixed machine, so that the
 * fuzz and limits suites give the same outcomes on every machine. They are read here and nowhere
 * else, and change only the bounds of config checks (never how many threads a run starts). Not
 * meant for users: a run configured past its machine's bounds is refused for a reason.
 */
export const TEST_CORES_ENV = 'RINGTRAIN_TEST_CORES';
export const TEST_TOTALMEM_ENV = 'RINGTRAIN_TEST_TOTALMEM';

function testOverride(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value >= 1 ? value : undefined;
}

/** The cores the config checks count with: os.availableParallelism() (or RINGTRAIN_TEST_CORES in tests). */
export function machineCores(): number {
  return testOverride(TEST_CORES_ENV) ?? os.availableParallelism();
}

/** The memory the config checks count with: os.totalmem() (or RINGTRAIN_TEST_TOTALMEM, bytes, in tests). */
export function machineMemory(): number {
  return testOverride(TEST_TOTALMEM_ENV) ?? os.totalmem();
}

/**
 * The most replicas (threads) one process may start on this machine: WORKERS_PER_CORE per core
 * (os.availableParallelism()), at most MAX_WORKERS_ANY_MACHINE. Each replica is a thread with its
 * own TensorFlow.js and model copy (about 28 MB before the model's weights), and a synchronous step
 * waits for the slowest: on 2 cores, 256 replicas of xor used 7.1 GB and never finished an epoch.
 * `cores` defaults to this machine's (machineCores()).
 */
export function maxWorkers(cores: number = machineCores()): number {
  return Math.max(1, Math.min(MAX_WORKERS_ANY_MACHINE, WORKERS_PER_CORE * cores));
}

export function workersBoundReason(cores: number = machineCores()): string {
  return `at most ${WORKERS_PER_CORE} replicas per core and this machine has ${cores}: more only share the cores, each is a thread with its own TensorFlow.js and model copy (about 28 MB), and every step waits for the slowest`;
}

// ---------------------------------------------------------------------------------------------
// Training sizes
// ---------------------------------------------------------------------------------------------

/** Epochs: a million epochs of one step each is already days of run; more is a typo. */
export const MAX_EPOCHS = 1_000_000;
/** Global batch size: 2^20 samples; the largest dataset here (mnist) has 60,000. */
export const MAX_BATCH_SIZE = 1 << 20;
/** Synthetic samples (data.samples): 10 million points already take 80 MB per split. */
export const MAX_SYNTHETIC_SAMPLES = 10_000_000;
/** Timers: Node fires a setTimeout longer than 2^31 - 1 ms (24.8 days) at once, which would declare every step stuck. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** model.layers: more than any model built from a list of layers. */
export const MAX_LAYERS = 1024;
/** model.inputShape dimensions (a sample of rank 5 makes tensors of rank 6, tfjs' limit for many ops). */
export const MAX_INPUT_RANK = 5;
/** The share of the machine's memory (os.totalmem()) a run's estimated model memory may take. */
export const MEMORY_SHARE = 0.5;

// ---------------------------------------------------------------------------------------------
// The model, built symbolically
// ---------------------------------------------------------------------------------------------

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

type Factory = (args: Record<string, unknown>) => tfl.layers.Layer;

function product(values: readonly (number | null)[]): number {
  return values.reduce<number>((p, d) => p * (d ?? 1), 1);
}

function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
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
      const factory = (tfl.layers as unknown as Record<string, Factory>)[type];
      if (typeof factory !== 'function') return { ok: false, index, message: `unknown layer type "${type}"` };
      const before = counted;
      const input: (number | null)[] = index === 0 ? [...inputShape] : sizes[index - 1]!.outputShape;
      const name = typeof args.name === 'string' ? args.name : `${snakeCase(type)}_${index + 1}`;
      const taken = names.get(name);
      if (taken !== undefined) {
        return { ok: false, index, arg: 'name', message: `cannot build ${type} layer: the name "${name}" is already ${taken} (layer names must be unique)` };
      }
      names.set(name, `model.layers[${index}]'s`);
      // tf.sequential names the model's input after the first layer.
      if (index === 0) names.set(`${name}_input`, "the model input's");
      try {
        // A copy: tfjs may write into its arguments (reshape replaces -1 in targetShape by null).
        const layerArgs: Record<string, unknown> = { name: `${snakeCase(type)}_${index + 1}`, ...structuredClone(args) };
        if (index === 0) layerArgs.inputShape = [...inputShape];
        model.add(factory(layerArgs));
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

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'more than 10^300 bytes';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const shown = unit === 0 ? String(Math.round(value)) : value < 10 ? value.toFixed(1) : String(Math.round(value));
  return value >= 1000 ? `${bytes.toExponential(1)} bytes` : `${shown} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return n < 1e15 ? Math.round(n).toLocaleString('en-US') : n.toExponential(2);
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
