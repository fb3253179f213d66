/**
 * The run-config schema: one JSON file describes a run. Zod is the single source of truth
 * for what is valid; parsing also normalizes (fills defaults, expands shorthands, maps aliases)
 * so the rest of the program only ever sees a `RunConfig`.
 *
 * Every schema here carries, as its zod error message, a description of what was *expected*
 * ("an integer >= 1"); `format.ts` turns zod issues into `path: expected X, found Y`.
 */
import path from 'node:path';
import { z } from 'zod';
import { classWeightSchema } from '../model/sample-weights.js';
import { accumulateStepsSchema } from '../train/accumulation.js';
import { checkpointCadenceFields, checkpointWriteFields, type OnWriteError } from '../checkpoint/config.js';
import { FILE_SOURCES, isFileSource } from '../data/file-sources.js';
import type { BuiltinDataConfig, DataConfig } from '../data/load-data.js';
import { CLIPPING_OPTIONS, clippingFields, clippingOptionsSet } from '../optim/clipping.js';
import type { OptimizerSpec } from '../optim/optimizer.js';
import { reduceLrOnPlateauSchema, type ReduceLrOnPlateauSpec } from '../optim/reduce-lr-on-plateau.js';
import { learningRateSchema } from '../optim/schedules/index.js';
import { formatValue } from './format.js';
import { checkLayerRules } from './layer-rules.js';
import { ACTIVATIONS, ACTIVATION_ARGS, LAYER_TYPES, checkLayerArgs, isActivation, isLayerType } from './layers.js';
import {
  MAX_BATCH_SIZE,
  MAX_EPOCHS,
  MAX_INPUT_RANK,
  MAX_LAYERS,
  MAX_STRING_LENGTH,
  MAX_SYNTHETIC_SAMPLES,
  MAX_TIMEOUT_MS,
  MAX_WORKERS_ANY_MACHINE,
  formatBytes,
  formatCount,
  machineCores,
  maxWorkers,
  workersBoundReason,
} from './limits.js';
import { OPTIMIZER_STATE_ARRAYS, estimateMemory, inspectLayers } from '../model/inspect-layers.js';
import { earlyStoppingSchema, type EarlyStoppingConfig } from '../train/callbacks/early-stopping-config.js';
import { closestMatch } from './suggest.js';
import { SEQUENCE_DEFAULT_SAMPLES, SEQUENCE_TASKS } from '../data/sources/sequences.js';
import { REPORT_FIELDS, reportSchema, type ReportConfig } from '../report/config.js';

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

export const BUILTIN_DATA_SOURCES = ['embedded-mnist', 'mnist', 'fashion-mnist', 'cifar10', 'xor', 'linear', ...SEQUENCE_TASKS] as const;
/** Every data.source: the built-in ones and those reading the user's files (data/file-sources.ts). */
export const DATA_SOURCES = [...BUILTIN_DATA_SOURCES, ...(Object.keys(FILE_SOURCES) as (keyof typeof FILE_SOURCES)[])] as const;
export type DataSource = (typeof DATA_SOURCES)[number];

export const LOSS_NAMES = [
  'meanSquaredError',
  'binaryCrossentropy',
  'categoricalCrossentropy',
  'sparseCategoricalCrossentropy',
] as const;
export type LossName = (typeof LOSS_NAMES)[number];

/** Keras spellings accepted for losses. */
export const LOSS_ALIASES: Readonly<Record<string, LossName>> = {
  mse: 'meanSquaredError',
  mean_squared_error: 'meanSquaredError',
  binary_crossentropy: 'binaryCrossentropy',
  categorical_crossentropy: 'categoricalCrossentropy',
  sparse_categorical_crossentropy: 'sparseCategoricalCrossentropy',
};

export const METRIC_NAMES = [
  'accuracy',
  'binaryAccuracy',
  'categoricalAccuracy',
  'sparseCategoricalAccuracy',
  'meanSquaredError',
  'meanAbsoluteError',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Short and Keras spellings accepted for metrics. */
export const METRIC_ALIASES: Readonly<Record<string, MetricName>> = {
  acc: 'accuracy',
  mse: 'meanSquaredError',
  mae: 'meanAbsoluteError',
  binary_accuracy: 'binaryAccuracy',
  categorical_accuracy: 'categoricalAccuracy',
  sparse_categorical_accuracy: 'sparseCategoricalAccuracy',
  mean_squared_error: 'meanSquaredError',
  mean_absolute_error: 'meanAbsoluteError',
};

export const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** The hyper-parameters each optimizer takes (besides `name`); gradient clipping applies to all. */
export const OPTIMIZER_OPTIONS: Readonly<Record<OptimizerName, readonly string[]>> = {
  sgd: ['learningRate', 'momentum', 'nesterov', ...CLIPPING_OPTIONS],
  adam: ['learningRate', 'beta1', 'beta2', 'epsilon', ...CLIPPING_OPTIONS],
  adamw: ['learningRate', 'beta1', 'beta2', 'epsilon', 'weightDecay', ...CLIPPING_OPTIONS],
  rmsprop: ['learningRate', 'rho', 'momentum', 'epsilon', 'centered', ...CLIPPING_OPTIONS],
};

export const BACKENDS = ['auto', 'wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKENDS)[number];

export const EVALUATION_SETS = ['test', 'train'] as const;

/** Replicas of one process whatever the machine; the bound on this machine is limits.ts' maxWorkers(). */
export const MAX_WORKERS = MAX_WORKERS_ANY_MACHINE;
export const DEFAULT_STEP_TIMEOUT_MS = 60_000;
/** How long the processes of a world wait for each other to join (torchrun's default is longer: 900 s). */
export const DEFAULT_RENDEZVOUS_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_RECOVERIES = 3;
export const DEFAULT_SEED = 42;
/** Seeds feed 32-bit PRNGs (src/util/random.ts). */
export const MAX_SEED = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

function integer(min: number, max?: number) {
  const expected = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  const s = z.int({ error: expected }).min(min, { error: expected });
  return max === undefined ? s : s.max(max, { error: expected });
}

/**
 * An integer >= min with a bound against mistakes (limits.ts): messages say `an integer >= min`
 * until the bound is passed, then the bound and why it is there.
 */
function boundedInteger(min: number, max: number, why: string) {
  const expected = `an integer >= ${min}`;
  // z.number, not z.int: z.int refuses numbers past 2^53 with the type's message, before the bound.
  return z
    .number({ error: expected })
    .min(min, { error: expected })
    .max(max, { error: `an integer from ${min} to ${max.toLocaleString('en-US')} (${why})` })
    .refine(Number.isInteger, { error: expected });
}

function positiveNumber() {
  return z.number({ error: 'a number > 0' }).gt(0, { error: 'a number > 0' });
}

function nonNegativeNumber() {
  return z.number({ error: 'a number >= 0' }).min(0, { error: 'a number >= 0' });
}

/** A number in range with a bound against mistakes: messages give the bound and why only once it is passed. */
function boundedNumber(base: z.ZodNumber, max: number, inclusive: boolean, why: string) {
  const expected = `a number ${inclusive ? '<=' : '<'} ${max} (${why})`;
  return inclusive ? base.max(max, { error: expected }) : base.lt(max, { error: expected });
}

/** Larger steps diverge at the first update for any model here; 1e308 is a typo. */
const MAX_LEARNING_RATE = 10;

/** [0, 1): fractions and decay rates. */
function unitFraction() {
  const expected = 'a number >= 0 and < 1';
  return z.number({ error: expected }).min(0, { error: expected }).lt(1, { error: expected });
}

function boolean() {
  return z.boolean({ error: 'true or false' });
}

function nonEmptyString(what: string) {
  const expected = `a non-empty string (${what})`;
  return z
    .string({ error: expected })
    .min(1, { error: expected })
    .max(MAX_STRING_LENGTH, { error: `a string of at most ${MAX_STRING_LENGTH} characters (${what})` });
}

/**
 * A name from `canonical`, also accepting the `aliases`, which are mapped to their canonical
 * name. Errors list the canonical names only; "did you mean" looks at every accepted spelling.
 */
function nameOf<T extends string>(canonical: readonly T[], aliases: Readonly<Record<string, T>> = {}) {
  const accepted = [...canonical, ...Object.keys(aliases)] as [string, ...string[]];
  return z
    .enum(accepted, { error: `one of ${canonical.join(', ')}` })
    .transform((name): T => aliases[name] ?? (name as T));
}

/** Accepts `"x"` as a shorthand for `{ [key]: "x" }` (e.g. `"adam"` for `{ "name": "adam" }`). */
function withShorthand<S extends z.ZodType>(key: string, schema: S) {
  return z.preprocess((value) => (typeof value === 'string' ? { [key]: value } : value), schema);
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/** The run name becomes a folder name (runs/<name>): at most 255 bytes on common file systems. */
export const MAX_NAME_LENGTH = 255;

export const nameSchema = z
  .string({ error: 'a non-empty name without "/" or "\\"' })
  .regex(/^(?!\.\.?$)[^/\\]+$/, { error: 'a non-empty name without "/" or "\\"' })
  // It is printed in one-line messages and names a folder: no line breaks or other controls.
  .regex(/^[^\u0000-\u001f\u007f]*$/, { error: 'a name without control characters (line breaks, tabs, ...)' })
  .max(MAX_NAME_LENGTH, { error: `a name of at most ${MAX_NAME_LENGTH} characters (it names the run's folder)` });

const shapeSchema = z
  .array(integer(1), { error: 'an array of positive integers, e.g. [28, 28, 1]' })
  .min(1, { error: 'a non-empty array of positive integers, e.g. [28, 28, 1]' })
  .max(MAX_INPUT_RANK, { error: `an array of at most ${MAX_INPUT_RANK} positive integers (a sample's dimensions), e.g. [28, 28, 1]` });

/** Layer arguments that would fight with `model.inputShape`. */
const RESERVED_LAYER_ARGS = ['inputShape', 'batchInputShape'] as const;

/**
 * One layer: `type` is a `tf.layers` factory name; every other key is an argument of that
 * factory. Argument names the factory does not read and unknown activation names are refused
 * here (tfjs would ignore the one and word the other as a Python porting problem); argument
 * values are checked by tfjs when the model is built.
 */
export const layerSpecSchema = z
  .looseObject(
    { type: z.string({ error: 'a layer type name such as "dense"' }) },
    { error: 'a layer object such as {"type": "dense", "units": 10}' },
  )
  .superRefine((layer, ctx) => {
    if (!isLayerType(layer.type)) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        input: layer.type,
        message: 'a tf.layers factory name such as dense, conv2d, maxPooling2d, flatten or dropout',
        params: { suggestion: closestMatch(layer.type, LAYER_TYPES) },
      });
      return;
    }
    let reserved = false;
    for (const key of RESERVED_LAYER_ARGS) {
      if (key in layer) {
        reserved = true;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          input: layer[key],
          message: 'not allowed on a layer: give the input shape once, as model.inputShape',
          params: { full: true },
        });
      }
    }
    if (reserved) return;
    for (const key of ACTIVATION_ARGS) {
      const value = layer[key];
      if (typeof value === 'string' && !isActivation(value)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          input: value,
          message: `one of ${ACTIVATIONS.join(', ')}`,
          params: { suggestion: closestMatch(value, ACTIVATIONS) },
        });
        return;
      }
    }
    // tfjs ignores arguments it does not know; a misspelt one would silently change the model.
    const { type, ...args } = layer;
    const check = checkLayerArgs(type, args);
    for (const key of check?.unknown ?? []) {
      const suggestion = closestMatch(key, check!.known);
      // When the factory threw, it stopped reading early: only an unmistakable misspelling
      // (case, "_" or "-" apart, e.g. Keras' kernel_size) is reported; the builder reports the rest.
      if (!check!.complete && (suggestion === undefined || suggestion.toLowerCase() !== key.replace(/[_-]/g, '').toLowerCase())) continue;
      const help =
        suggestion !== undefined
          ? `did you mean ${JSON.stringify(suggestion)}?`
          : check!.known.length > 0
            ? `${type} takes ${check!.known.join(', ')}`
            : `${type} takes no arguments of its own`;
      ctx.addIssue({
        code: 'custom',
        path: [key],
        input: layer[key],
        message: `unknown argument of layer ${type} (${help})`,
        params: { full: true },
      });
    }
    // Values tfjs would accept silently and then misbehave on (kernelSize 0, a dropout rate of 1.5, ...).
    const problem = checkLayerRules(type, args);
    if (problem) {
      ctx.addIssue({ code: 'custom', path: [problem.arg], input: problem.found, message: problem.expected });
    }
  });

const MODEL_EXPECTED = 'an object with "inputShape" and "layers", or with "topology"';

export const modelSchema = z
  .strictObject(
    {
      inputShape: shapeSchema.optional(),
      layers: z
        .array(layerSpecSchema, { error: 'an array of layer objects' })
        .min(1, { error: 'a non-empty array of layer objects' })
        .max(MAX_LAYERS, { error: `an array of at most ${MAX_LAYERS} layer objects` })
        .optional(),
      topology: nonEmptyString('the path of a TensorFlow.js model.json').optional(),
    },
    { error: MODEL_EXPECTED },
  )
  .transform((model, ctx): { inputShape: number[]; layers: LayerSpec[] } | { topology: string } => {
    if (model.topology !== undefined) {
      for (const key of ['inputShape', 'layers'] as const) {
        if (model[key] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            input: model[key],
            message: 'not allowed together with model.topology (a model is either inputShape + layers, or a topology file)',
            params: { full: true },
          });
          return z.NEVER;
        }
      }
      return { topology: model.topology };
    }
    if (model.inputShape === undefined && model.layers === undefined) {
      ctx.addIssue({ code: 'custom', input: model, message: MODEL_EXPECTED });
      return z.NEVER;
    }
    if (model.inputShape === undefined) {
      ctx.addIssue({ code: 'custom', path: ['inputShape'], input: undefined, message: 'an array of positive integers, e.g. [28, 28, 1]' });
      return z.NEVER;
    }
    if (model.layers === undefined) {
      ctx.addIssue({ code: 'custom', path: ['layers'], input: undefined, message: 'a non-empty array of layer objects' });
      return z.NEVER;
    }
    return { inputShape: model.inputShape, layers: model.layers };
  });

const builtinDataSchema = z.strictObject(
    {
      source: z.enum(BUILTIN_DATA_SOURCES, { error: `one of ${DATA_SOURCES.join(', ')}` }),
      dir: nonEmptyString('a directory').optional(),
      cacheDir: nonEmptyString('a directory').optional(),
      download: boolean().optional(),
      mirror: nonEmptyString('a base URL').optional(),
      samples: boundedInteger(1, MAX_SYNTHETIC_SAMPLES, 'synthetic points are generated in memory').optional(),
      trainLimit: integer(1).optional(),
      testLimit: integer(1).optional(),
    },
    { error: 'an object such as {"source": "mnist"}' },
  );

/** A built-in source's fields, or those of the file source `data.source` names (each module owns its schema). */
export const dataSchema = withShorthand(
  'source',
  // `source` first (its message lists every source and suggests one), then that source's own
  // fields: each file source's schema is a strict object with a literal `source` (typed loosely in FileSource).
  z
    .looseObject({ source: z.enum(DATA_SOURCES, { error: `one of ${DATA_SOURCES.join(', ')}` }) }, { error: 'an object such as {"source": "mnist"}' })
    .pipe(z.discriminatedUnion('source', [builtinDataSchema, ...Object.values(FILE_SOURCES).map((s) => s.schema as unknown as typeof builtinDataSchema)]) as unknown as z.ZodType<DataConfig, { source: DataSource }>),
);

export const lossSchema = withShorthand(
  'name',
  z
    .strictObject(
      { name: nameOf(LOSS_NAMES, LOSS_ALIASES), fromLogits: boolean().default(false) },
      { error: 'a loss name or an object such as {"name": "sparseCategoricalCrossentropy", "fromLogits": true}' },
    )
    .superRefine((loss, ctx) => {
      if (loss.fromLogits && loss.name === 'meanSquaredError') {
        ctx.addIssue({
          code: 'custom',
          path: ['fromLogits'],
          input: true,
          message: 'only applies to the crossentropy losses, not to meanSquaredError',
          params: { full: true },
        });
      }
    }),
);

const metricNameSchema = nameOf(METRIC_NAMES, METRIC_ALIASES);

export const metricsSchema = z
  .array(metricNameSchema, { error: 'an array of metric names, e.g. ["accuracy"]' })
  .superRefine((metrics, ctx) => {
    metrics.forEach((metric, i) => {
      if (metrics.indexOf(metric) !== i) {
        ctx.addIssue({
          code: 'custom',
          path: [i],
          input: metric,
          message: `duplicate metric: ${metric} is already listed at metrics[${metrics.indexOf(metric)}]`,
          params: { full: true },
        });
      }
    });
  });

export const optimizerSchema = withShorthand(
  'name',
  z
    .strictObject(
      {
        name: nameOf(OPTIMIZER_NAMES),
        // A number, or a schedule object (optim/schedules/) as Keras takes a LearningRateSchedule.
        learningRate: learningRateSchema(
          boundedNumber(positiveNumber(), MAX_LEARNING_RATE, true, 'larger steps diverge at once; this is a bound against typos'),
          'a number > 0 or a schedule such as {"name": "cosineDecay", "initialLearningRate": 0.1, "decaySteps": 1000}',
        ).optional(),
        momentum: boundedNumber(nonNegativeNumber(), 1, false, 'at 1 or more the velocity never decays and the updates grow without bound').optional(),
        nesterov: boolean().optional(),
        beta1: unitFraction().optional(),
        beta2: unitFraction().optional(),
        epsilon: positiveNumber().optional(),
        weightDecay: boundedNumber(nonNegativeNumber(), 1, true, 'decoupled weight decay takes this share of each weight per unit of learning rate').optional(),
        rho: unitFraction().optional(),
        centered: boolean().optional(),
        ...clippingFields,
      },
      { error: 'an optimizer name or an object such as {"name": "adam", "learningRate": 0.001}' },
    )
    .superRefine((optimizer, ctx) => {
      const allowed = OPTIMIZER_OPTIONS[optimizer.name];
      for (const [key, value] of Object.entries(optimizer)) {
        if (key === 'name' || value === undefined || allowed.includes(key)) continue;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          input: value,
          message: `not an option of optimizer ${optimizer.name} (${optimizer.name} takes ${allowed.join(', ')})`,
          params: { full: true },
        });
      }
      const clipping = clippingOptionsSet(optimizer);
      if (clipping.length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: [clipping[1]!],
          input: optimizer[clipping[1]!],
          message: `cannot be combined with optimizer.${clipping[0]}: set one of ${CLIPPING_OPTIONS.join(', ')} (as Keras)`,
          params: { full: true },
        });
      }
    }),
);

/** What a step with a non-finite loss or gradient does: stop the run, or skip its update. */
export const NON_FINITE_POLICIES = ['stop', 'skip'] as const;

export const epochsSchema = boundedInteger(1, MAX_EPOCHS, 'a bound against typos: a million epochs is already more than any run here needs');
export const batchSizeSchema = boundedInteger(1, MAX_BATCH_SIZE, "a bound against typos: the largest dataset here, mnist, has 60,000 samples");
export const seedSchema = integer(0, MAX_SEED);

export const trainingSchema = z.strictObject(
  {
    epochs: epochsSchema,
    batchSize: batchSizeSchema,
    shuffle: boolean().default(true),
    seed: seedSchema.default(DEFAULT_SEED),
    validationSplit: unitFraction().default(0),
    validateOnTest: boolean().default(false),
    nonFinite: z.enum(NON_FINITE_POLICIES, { error: `one of ${NON_FINITE_POLICIES.join(', ')}` }).default('stop'),
    accumulateSteps: accumulateStepsSchema.default(1),
    classWeight: classWeightSchema.optional(),
    reduceLrOnPlateau: reduceLrOnPlateauSchema.optional(),
    earlyStopping: earlyStoppingSchema.optional(),
  },
  { error: 'an object such as {"epochs": 5, "batchSize": 32}' },
);

export const evaluationSchema = z.strictObject(
  { on: z.enum(EVALUATION_SETS, { error: `one of ${EVALUATION_SETS.join(', ')}` }).default('test') },
  { error: 'an object such as {"on": "test"}' },
);

/** `an integer from 1 to <this machine's bound> or "auto"` (the bound depends on the cores: limits.ts). */
export function workersExpected(): string {
  return `an integer from 1 to ${maxWorkers()} or "auto"`;
}

/**
 * parallel.workers: "auto" or a count of replicas. With `machine` (the default), the count is
 * bounded by this machine's cores (maxWorkers()); without, only by MAX_WORKERS_ANY_MACHINE, for a
 * config read from a checkpoint that another machine wrote.
 */
function workersSchemaFor(machine: boolean) {
  const max = () => (machine ? maxWorkers() : MAX_WORKERS_ANY_MACHINE);
  return z.unknown().superRefine((value, ctx) => {
    if (value === 'auto' || (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max())) return;
    const over = typeof value === 'number' && Number.isInteger(value) && value > max();
    const expected = machine ? workersExpected() : `an integer from 1 to ${MAX_WORKERS_ANY_MACHINE} or "auto"`;
    ctx.addIssue({
      code: 'custom',
      input: value,
      message: over ? `expected ${expected}, found ${formatValue(value)} (${machine ? workersBoundReason() : 'the bound whatever the machine'})` : expected,
      params: over ? { full: true } : undefined,
    });
  }) as unknown as z.ZodType<number | 'auto', unknown>;
}

export const workersSchema = workersSchemaFor(true);

function parallelSchemaFor(machine: boolean) {
  return z.strictObject(
    {
      workers: workersSchemaFor(machine).default('auto'),
      stepTimeoutMs: boundedInteger(1, MAX_TIMEOUT_MS, "Node's longest timer, 24.8 days; a longer one fires at once").default(DEFAULT_STEP_TIMEOUT_MS),
      rendezvousTimeoutMs: boundedInteger(1, MAX_TIMEOUT_MS, "Node's longest timer, 24.8 days; a longer one fires at once").default(DEFAULT_RENDEZVOUS_TIMEOUT_MS),
      maxRecoveries: integer(0).default(DEFAULT_MAX_RECOVERIES),
      syncBatchNorm: boolean().default(false),
    },
    { error: 'an object such as {"workers": "auto"}' },
  );
}

export const parallelSchema = parallelSchemaFor(true);

export const backendSchema = z.enum(BACKENDS, { error: `one of ${BACKENDS.join(', ')}` });

export const outputDirSchema = nonEmptyString('a directory');

export const outputSchema = z.strictObject(
  { dir: outputDirSchema.optional(), metricsLog: boolean().default(true) },
  { error: 'an object such as {"dir": "runs/mnist"}' },
);

export const dataDirSchema = nonEmptyString('a directory');

export const MONITOR_MODES = ['min', 'max'] as const;

export const checkpointSchema = z.strictObject(
  {
    /** Default: <output.dir>/checkpoints. */
    dir: nonEmptyString('a directory').optional(),
    /** Write a checkpoint every this many global steps (0: only at epoch ends and at the end). */
    everySteps: integer(0).default(0),
    ...checkpointCadenceFields,
    keepLast: integer(1).default(3),
    /** Keep the best checkpoint by this epoch metric, e.g. "val_loss" (min) or "val_accuracy" (max). */
    monitor: nonEmptyString('a metric name such as "val_loss"').optional(),
    mode: z.enum(MONITOR_MODES, { error: 'one of min, max' }).optional(),
    ...checkpointWriteFields,
  },
  { error: 'an object such as {"everySteps": 500}' },
);

function sectionShapesFor(machine: boolean) {
  return {
    name: nameSchema.optional(),
    model: modelSchema,
    // Optional: a program may pass its data in code (TrainerOptions.data); `train` requires it.
    data: dataSchema.optional(),
    loss: lossSchema,
    metrics: metricsSchema.default([]),
    optimizer: optimizerSchema,
    training: trainingSchema,
    evaluation: evaluationSchema.prefault({}),
    parallel: (machine ? parallelSchema : parallelSchemaFor(false)).prefault({}),
    backend: backendSchema.default('auto'),
    output: outputSchema.prefault({}),
    checkpoint: checkpointSchema.prefault({}),
    report: reportSchema.prefault({}),
  };
}

const sectionShapes = sectionShapesFor(true);
/** The same fields, with no bound that depends on this machine (machineChecks: false). */
const portableSectionShapes = sectionShapesFor(false);

/**
 * The fields each object of the config knows, by JSON path with array indices dropped
 * ('' is the top level). Used to list fields and suggest one when an unknown field appears.
 */
const KNOWN_FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(sectionShapes),
  model: ['inputShape', 'layers', 'topology'],
  data: ['source', 'dir', 'cacheDir', 'download', 'mirror', 'samples', 'trainLimit', 'testLimit'],
  loss: ['name', 'fromLogits'],
  optimizer: ['name', ...new Set(Object.values(OPTIMIZER_OPTIONS).flat())],
  training: Object.keys(trainingSchema.shape),
  evaluation: Object.keys(evaluationSchema.shape),
  parallel: Object.keys(parallelSchema.shape),
  output: Object.keys(outputSchema.shape),
  checkpoint: Object.keys(checkpointSchema.shape),
  ...REPORT_FIELDS,
};

/** Field names people carry over from elsewhere (Keras), mapped to ours. */
const FIELD_ALIASES: Readonly<Record<string, string>> = { lr: 'learningRate', decay: 'rho' };

/**
 * The fields the object at `path` (array indices dropped, '' = top level) may hold, given its
 * value as written: an optimizer object with a valid name only knows that optimizer's options.
 */
export function knownFieldsAt(path: string, value: unknown): readonly string[] {
  if (path === 'data' && value !== null && typeof value === 'object') {
    const source = (value as { source?: unknown }).source;
    if (typeof source === 'string' && isFileSource(source)) return ['source', ...FILE_SOURCES[source].fields.filter((f) => f !== 'source')];
  }
  if (path === 'optimizer' && value !== null && typeof value === 'object') {
    const name = (value as { name?: unknown }).name;
    if (typeof name === 'string' && Object.hasOwn(OPTIMIZER_OPTIONS, name)) {
      return ['name', ...OPTIMIZER_OPTIONS[name as OptimizerName]];
    }
  }
  return KNOWN_FIELDS[path] ?? [];
}

/** The known field an unknown `key` was probably meant to be, if any. */
export function suggestField(key: string, known: readonly string[]): string | undefined {
  const alias = FIELD_ALIASES[key];
  if (alias !== undefined && known.includes(alias)) return alias;
  return closestMatch(key, known);
}

// ---------------------------------------------------------------------------------------------
// The run config
// ---------------------------------------------------------------------------------------------

/** One layer of a model: a `tf.layers` factory name plus that factory's arguments. */
export interface LayerSpec {
  type: string;
  [arg: string]: unknown;
}

/** A run, normalized: defaults filled, shorthands expanded, aliases mapped to canonical names. */
export interface RunConfig {
  /** Workload name; defaults to the config file's base name. */
  name: string;
  /** Layers to stack, or a TensorFlow.js model.json (resolved against the config file's folder). */
  model: { inputShape: number[]; layers: LayerSpec[] } | { topology: string };
  /** The data section is the data loader's own config type; absent when a program passes TrainerOptions.data. */
  data?: DataConfig;
  loss: { name: LossName; fromLogits: boolean };
  metrics: MetricName[];
  /** Hyper-parameters left out stay undefined: the optimizer module fills TF.js defaults. */
  optimizer: OptimizerSpec;
  training: {
    epochs: number;
    batchSize: number;
    shuffle: boolean;
    seed: number;
    validationSplit: number;
    /** Validate on the test set after each epoch (as the cifar10 reference does). */
    validateOnTest: boolean;
    /** A step with a non-finite loss or gradient stops the run (default) or is skipped. */
    nonFinite: 'stop' | 'skip';
    /** Global batches per optimizer update (gradient accumulation; 1: none). */
    accumulateSteps: number;
    /** Keras's class_weight: class index ("0", "1", ...) to the weight of its samples' losses. */
    classWeight?: Record<string, number>;
    /** Scale the learning rate down when an epoch metric stops improving (Keras ReduceLROnPlateau). */
    reduceLrOnPlateau?: ReduceLrOnPlateauSpec;
    /** Stop when an epoch metric stops improving (as Keras's EarlyStopping). */
    earlyStopping?: EarlyStoppingConfig;
  };
  evaluation: { on: 'test' | 'train' };
  parallel: {
    workers: number | 'auto';
    /** A replica that makes no progress for this long is declared stuck. */
    stepTimeoutMs: number;
    /** With several processes: how long they wait for each other to join before giving up. */
    rendezvousTimeoutMs: number;
    /** Replica failures the run recovers from (fresh replicas from the last step boundary) before it gives up. */
    maxRecoveries: number;
    /** BatchNormalization normalises with the whole global batch's statistics (model/sync-batch-norm.ts), not each replica's slice's. */
    syncBatchNorm: boolean;
  };
  backend: BackendName;
  output: { dir: string; metricsLog: boolean };
  checkpoint: {
    /** Where checkpoints go; default <output.dir>/checkpoints. */
    dir: string;
    /** Every this many global steps (0: none). */
    everySteps: number;
    /** At the first step boundary this long after the last checkpoint (0: none); default 60. */
    everySeconds: number;
    /** At every epoch end; default: when `monitor` is set. The end of fit() and a stop always write one. */
    everyEpoch: boolean;
    keepLast: number;
    /** An epoch metric ("loss", "val_loss", "val_accuracy", ...) whose best checkpoint is kept. */
    monitor?: string;
    /** Default: "max" for accuracies, "min" otherwise. */
    mode?: 'min' | 'max';
    /** A failed write stops the run at the next step boundary ("stop", default) or is a warning ("warn"). */
    onWriteError: OnWriteError;
  };
  /** Options of the report sinks (src/report/config.ts). */
  report: ReportConfig;
}

export interface RunConfigContext {
  /** Folder a relative `model.topology` is resolved against (the config file's folder). */
  baseDir?: string;
  /** Name used when the config has none (the config file's base name). */
  defaultName?: string;
  /**
   * Whether the bounds that depend on this machine apply (default true): parallel.workers at most
   * WORKERS_PER_CORE per core of this machine (else at most MAX_WORKERS_ANY_MACHINE), and the
   * model's estimated memory at most MEMORY_SHARE of this machine's. False for a config read from a
   * checkpoint, which another machine may have written: the structure, the bounds against typos
   * and the symbolic build of the model still apply.
   */
  machineChecks?: boolean;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The zod schema of a whole run config. Context-dependent defaults (`name`, `output.dir`) and
 * the resolution of `model.topology` happen in its final transform.
 */
export function runConfigSchema(context: RunConfigContext = {}) {
  const machine = context.machineChecks ?? true;
  return z
    .strictObject(machine ? sectionShapes : portableSectionShapes, { error: 'an object (the run config)' })
    .superRefine((config, ctx) => {
      const { validateOnTest, validationSplit } = config.training;
      if (validateOnTest && validationSplit > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['training', 'validateOnTest'],
          input: true,
          message: `cannot be combined with training.validationSplit ${validationSplit}: choose one validation set`,
          params: { full: true },
        });
      }
      // Only a config that is otherwise valid is built (its layers' arguments checked first).
      if (ctx.issues.length === 0) checkModelSize(config, ctx, machine);
    })
    .transform((config, ctx): RunConfig => {
      const name = config.name ?? context.defaultName;
      if (name === undefined || !nameSchema.safeParse(name).success) {
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          input: name,
          message: 'missing required field (a config that is not loaded from a file has no default name)',
          params: { full: true },
        });
        return z.NEVER;
      }
      const outputDir = config.output.dir ?? `runs/${name}`;
      let model = config.model;
      if ('topology' in model && context.baseDir !== undefined && !URL_LIKE.test(model.topology)) {
        model = { topology: path.resolve(context.baseDir, model.topology) };
      }
      return {
        name,
        model,
        ...(config.data === undefined ? {} : { data: config.data }),
        loss: config.loss,
        metrics: config.metrics,
        optimizer: config.optimizer,
        training: config.training,
        evaluation: config.evaluation,
        parallel: config.parallel,
        backend: config.backend,
        output: { dir: outputDir, metricsLog: config.output.metricsLog },
        checkpoint: {
          ...config.checkpoint,
          dir: config.checkpoint.dir ?? path.join(outputDir, 'checkpoints'),
          // The best checkpoint by `monitor` is chosen among epoch-end checkpoints.
          everyEpoch: config.checkpoint.everyEpoch ?? config.checkpoint.monitor !== undefined,
        },
        report: config.report,
      };
    });
}

export type RunConfigSchema = ReturnType<typeof runConfigSchema>;

/** Train samples of each data source when known before reading it (for the activation estimate). */
function knownTrainSamples(config: DataConfig | undefined): number | undefined {
  if (config === undefined || isFileSource(config.source)) return undefined;
  const data = config as BuiltinDataConfig;
  const full: Record<BuiltinDataConfig['source'], number | undefined> = {
    xor: 4,
    linear: data.samples ?? 100,
    'embedded-mnist': 10_000,
    mnist: 60_000,
    'fashion-mnist': 60_000,
    cifar10: 50_000,
    majority: data.samples ?? SEQUENCE_DEFAULT_SAMPLES,
    recall: data.samples ?? SEQUENCE_DEFAULT_SAMPLES,
  };
  const n = full[data.source];
  return n === undefined ? undefined : Math.min(n, data.trainLimit ?? n);
}

/**
 * Builds the model symbolically (no weight allocated) and refuses it before anything is read
 * or allocated when tfjs cannot build a layer, or when its parameters (with gradients and
 * optimizer state, per replica) and one batch's activations would take more than MEMORY_SHARE of
 * this machine's memory. A model given as a topology file is checked when it is built.
 */
function checkModelSize(config: z.output<z.ZodObject<typeof sectionShapes>>, ctx: z.core.$RefinementCtx, machine: boolean): void {
  const model = config.model;
  if (!('layers' in model)) return;
  const inspection = inspectLayers(model.inputShape, model.layers);
  if (!inspection.ok) {
    const at = inspection.arg === undefined ? [] : [inspection.arg];
    ctx.addIssue({ code: 'custom', path: ['model', 'layers', inspection.index, ...at], input: model.layers[inspection.index], message: inspection.message, params: { full: true } });
    return;
  }
  // The memory estimate is about this machine: not for a config that another machine may have written.
  if (!machine) return;
  const replicas = config.parallel.workers === 'auto' ? Math.min(maxWorkers(), machineCores()) : config.parallel.workers;
  const activations = inspection.layers.reduce((n, l) => n + l.outputs, 0);
  const batch = Math.min(config.training.batchSize, knownTrainSamples(config.data) ?? config.training.batchSize);
  const stateArrays = OPTIMIZER_STATE_ARRAYS[config.optimizer.name] ?? 3;
  const memory = estimateMemory(inspection.params, activations, replicas, stateArrays, batch);
  if (memory.total <= memory.limit) return;
  const limit = `the limit is ${formatBytes(memory.limit)}, half of this machine's memory`;
  if (memory.paramBytes >= memory.activationBytes) {
    const biggest = inspection.layers.reduce((best, l, i) => (l.params > inspection.layers[best]!.params ? i : best), 0);
    const layer = inspection.layers[biggest]!;
    ctx.addIssue({
      code: 'custom',
      path: ['model', 'layers', biggest],
      input: model.layers[biggest],
      message: `the model would have ${formatCount(inspection.params)} parameters (this ${layer.type} layer ${formatCount(layer.params)}), about ${formatBytes(memory.total)} with gradients and ${config.optimizer.name} state for ${replicas} replica${replicas === 1 ? '' : 's'}; ${limit}`,
      params: { full: true },
    });
    return;
  }
  const largest = inspection.layers.reduce((best, l, i) => (l.outputs > inspection.layers[best]!.outputs ? i : best), 0);
  ctx.addIssue({
    code: 'custom',
    path: ['training', 'batchSize'],
    input: config.training.batchSize,
    message: `a batch of ${formatCount(batch)} samples would need about ${formatBytes(memory.total)} for the model's activations and parameters (model.layers[${largest}] alone outputs ${formatCount(inspection.layers[largest]!.outputs)} values per sample); ${limit}: use a smaller batch or model`,
    params: { full: true },
  });
}

// The hand-written RunConfig above must be exactly what the schema produces.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const schemaMatchesRunConfig: Equals<z.output<typeof sectionShapes.model>, RunConfig['model']> &
  Equals<z.output<typeof sectionShapes.data>, RunConfig['data']> &
  Equals<z.output<typeof sectionShapes.loss>, RunConfig['loss']> &
  Equals<z.output<typeof sectionShapes.metrics>, RunConfig['metrics']> &
  Equals<z.output<typeof sectionShapes.optimizer>, RunConfig['optimizer']> &
  Equals<z.output<typeof sectionShapes.training>, RunConfig['training']> &
  Equals<z.output<typeof sectionShapes.evaluation>, RunConfig['evaluation']> &
  Equals<z.output<typeof sectionShapes.parallel>, RunConfig['parallel']> &
  Equals<z.output<typeof sectionShapes.backend>, RunConfig['backend']> &
  Equals<z.output<typeof sectionShapes.report>, RunConfig['report']> &
  Equals<Omit<z.output<typeof sectionShapes.checkpoint>, 'dir' | 'everyEpoch'>, Omit<RunConfig['checkpoint'], 'dir' | 'everyEpoch'>> = true;
void schemaMatchesRunConfig;
