/**
 * Layer argument rules (src/config/layer-rules.ts), size bounds (src/config/limits.ts) and the
 * symbolic model build with its memory estimate (src/model/inspect-layers.ts):
 * refused when the config is validated, with the field's path, before anything is allocated.
 */
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { LAYER_RULES } from '../../src/config/layer-rules.js';
import { checkLayerArgs, isLayerType } from '../../src/config/layers.js';
import { TEST_CORES_ENV, TEST_TOTALMEM_ENV, checkDocumentLimits, maxWorkers, workersBoundReason } from '../../src/config/limits.js';
import { inspectLayers, paramMemoryProblem } from '../../src/model/inspect-layers.js';
import { loadRunConfig, parseRunConfig, resolveWorkers } from '../../src/config/load.js';
import { buildModel } from '../../src/model/build-model.js';

function minimal(): Record<string, any> {
  return {
    model: {
      inputShape: [28, 28, 1],
      layers: [
        { type: 'conv2d', filters: 8, kernelSize: 3, activation: 'relu' },
        { type: 'maxPooling2d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dropout', rate: 0.25 },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
    },
    data: { source: 'mnist' },
    loss: 'sparseCategoricalCrossentropy',
    optimizer: 'adam',
    training: { epochs: 5, batchSize: 32 },
    parallel: { workers: 1 },
  };
}

function refusal(config: unknown): ConfigError {
  try {
    parseRunConfig(config, { defaultName: 'test' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

/**
 * The checks see a fixed machine (limits.ts' test-only variables): 3 cores, so at most 12
 * workers, and 16 GB, so a limit of 8.0 GB, whatever machine runs the tests.
 */
const MAX_WORKERS = 12;
const saved = { cores: process.env[TEST_CORES_ENV], memory: process.env[TEST_TOTALMEM_ENV] };
beforeAll(() => {
  process.env[TEST_CORES_ENV] = '3';
  process.env[TEST_TOTALMEM_ENV] = String(16e9);
});
afterAll(() => {
  for (const [name, value] of [[TEST_CORES_ENV, saved.cores], [TEST_TOTALMEM_ENV, saved.memory]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('the bound on workers', () => {
  it('is 4 per core, at most 256, at least 1; the reason names the cores', () => {
    expect(maxWorkers()).toBe(MAX_WORKERS);
    expect([maxWorkers(1), maxWorkers(16), maxWorkers(64), maxWorkers(1000), maxWorkers(0)]).toEqual([4, 64, 256, 256, 1]);
    expect(workersBoundReason()).toBe(
      'at most 4 replicas per core and this machine has 3: more only share the cores, each is a thread with its own TensorFlow.js and model copy (about 28 MB), and every step waits for the slowest',
    );
  });

  it('is checked in a config read from a file, not in one read from a checkpoint (machineChecks: false)', () => {
    const config = { ...minimal(), parallel: { workers: 64 } };
    expect(refusal(config).message).toBe(`parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found 64 (${workersBoundReason()})`);
    expect(parseRunConfig(config, { defaultName: 'test', machineChecks: false }).parallel.workers).toBe(64);
  });
});

describe('the layer rules table', () => {
  it('names real layer types, and only arguments their tfjs factory reads', () => {
    // For each argument, the first of these values its rule accepts.
    const samples: unknown[] = [2, 1, -1, 0.5, true, [2, 2], [2, 2, 2], [1], [-1], 'valid', 'channelsLast', 'relu', 'concat', { type: 'lstm', units: 2 }];
    for (const [type, rules] of Object.entries(LAYER_RULES)) {
      expect(isLayerType(type), type).toBe(true);
      const args = Object.fromEntries(
        Object.entries(rules.args).map(([arg, rule]) => {
          const value = samples.find((v) => rule.ok(v));
          expect(value, `${type}.${arg}: no sample value passes its rule`).toBeDefined();
          return [arg, value];
        }),
      );
      if (type === 'activation') args.activation = 'relu';
      const check = checkLayerArgs(type, args);
      expect(check?.complete, `${type} constructs with valid arguments`).toBe(true);
      expect(check?.unknown ?? [], `${type} arguments tfjs does not read`).toEqual([]);
    }
  });

  it('covers every layer type of the shipped configs', async () => {
    for (const file of ['cifar10-cnn', 'default', 'linear', 'mnist-cnn', 'mnist-mlp', 'xor', 'majority-lstm', 'majority-transformer']) {
      const config = await loadRunConfig(path.resolve('configs', `${file}.json`));
      if (!('layers' in config.model)) continue;
      for (const layer of config.model.layers) expect(Object.keys(LAYER_RULES), file).toContain(layer.type);
    }
  });
});

/** [what, the layer at model.layers[0] (of the minimal model), expected message] */
const BAD_LAYERS: [string, Record<string, unknown>, string][] = [
  ['kernelSize 0 (tfjs builds a layer whose output is all zeros)', { type: 'conv2d', filters: 8, kernelSize: 0 }, 'model.layers[0].kernelSize: expected an integer from 1 to 16,777,216, or an array of 2 such integers, found 0'],
  ['a kernelSize of three numbers on conv2d', { type: 'conv2d', filters: 8, kernelSize: [3, 3, 3] }, 'model.layers[0].kernelSize: expected an integer from 1 to 16,777,216, or an array of 2 such integers, found [3,3,3]'],
  ['strides 0 (tfjs fails at the first step)', { type: 'conv2d', filters: 8, kernelSize: 3, strides: 0 }, 'model.layers[0].strides: expected an integer from 1 to 16,777,216, or an array of 2 such integers, found 0'],
  ['filters -1', { type: 'conv2d', filters: -1, kernelSize: 3 }, 'model.layers[0].filters: expected an integer from 1 to 16,777,216, found -1'],
  ['no filters', { type: 'conv2d', kernelSize: 3 }, 'model.layers[0].filters: missing required field (expected an integer from 1 to 16,777,216)'],
  ['an unknown padding', { type: 'conv2d', filters: 8, kernelSize: 3, padding: 'full' }, 'model.layers[0].padding: expected one of "valid", "same", found "full"'],
  ['Keras\' dataFormat spelling', { type: 'conv2d', filters: 8, kernelSize: 3, dataFormat: 'channels_last' }, 'model.layers[0].dataFormat: expected one of "channelsLast", "channelsFirst", found "channels_last"'],
  ['poolSize 0', { type: 'maxPooling2d', poolSize: 0 }, 'model.layers[0].poolSize: expected an integer from 1 to 16,777,216, or an array of 2 such integers, found 0'],
  ['a layer name with a space', { type: 'conv2d', filters: 8, kernelSize: 3, name: 'my conv' }, 'model.layers[0].name: expected a layer name of 1 to 255 letters, digits, "_", "-" or ".", found "my conv"'],
  [
    'a kernel larger than its input',
    { type: 'conv2d', filters: 8, kernelSize: 40 },
    'model.layers[0]: cannot build conv2d layer: kernelSize [40, 40] does not fit its input [28, 28, 1] with padding "valid"; expected a kernel of at most 28x28, or padding "same"',
  ],
  ['an unknown initializer (tfjs\' message runs over 5 lines)', { type: 'conv2d', filters: 8, kernelSize: 3, kernelInitializer: 'glorot' }, 'model.layers[0].kernelInitializer: cannot build conv2d layer: Unknown initializer: glorot.'],
];

/** [what, a layer put after the flatten (model.layers[3]), expected message] */
const BAD_LATER_LAYERS: [string, Record<string, unknown>, string][] = [
  ['dropout rate 1.5 (tfjs trains with it)', { type: 'dropout', rate: 1.5 }, 'model.layers[3].rate: expected a number >= 0 and < 1, found 1.5'],
  ['dropout rate 1', { type: 'dropout', rate: 1 }, 'model.layers[3].rate: expected a number >= 0 and < 1, found 1'],
  ['dropout rate as a string', { type: 'dropout', rate: '0.5' }, 'model.layers[3].rate: expected a number >= 0 and < 1, found "0.5"'],
  ['dropout without a rate (tfjs drops nothing)', { type: 'dropout' }, 'model.layers[3].rate: missing required field (expected a number >= 0 and < 1)'],
  ['units 0', { type: 'dense', units: 0 }, 'model.layers[3].units: expected an integer from 1 to 16,777,216, found 0'],
  ['units 2.5', { type: 'dense', units: 2.5 }, 'model.layers[3].units: expected an integer from 1 to 16,777,216, found 2.5'],
  ['repeatVector n 0 (an empty output)', { type: 'repeatVector', n: 0 }, 'model.layers[3].n: expected an integer from 1 to 16,777,216, found 0'],
  ['reLU maxValue -1 (fails in the first step)', { type: 'reLU', maxValue: -1 }, 'model.layers[3].maxValue: expected a number >= 0, found -1'],
  ['batchNormalization momentum 5', { type: 'batchNormalization', momentum: 5 }, 'model.layers[3].momentum: expected a number from 0 to 1, found 5'],
  ['an activation layer without an activation', { type: 'activation' }, 'model.layers[3].activation: missing required field (expected an activation name)'],
  ['a reshape that changes the size (tfjs fails at the first step)', { type: 'reshape', targetShape: [3] }, 'model.layers[3].targetShape: cannot build reshape layer: targetShape [3] holds 3 values, its input [1352] has 1,352'],
  ['a name already given (tfjs refuses it only when a replica compiles the model: exit 1)', { type: 'dense', units: 4, name: 'conv2d_1' }, 'model.layers[3].name: cannot build dense layer: the name "conv2d_1" is already model.layers[0]\'s (layer names must be unique)'],
  ['the name of the model input', { type: 'dense', units: 4, name: 'conv2d_1_input' }, 'model.layers[3].name: cannot build dense layer: the name "conv2d_1_input" is already the model input\'s (layer names must be unique)'],
  ['softmax along axis 0 (fails at the first step)', { type: 'softmax', axis: 0 }, 'model.layers[3].axis: expected -1 (tfjs computes a softmax along the last axis only), found 0'],
  ['a recurrent layer on flat input', { type: 'lstm', units: 4 }, 'model.layers[3]: cannot build lstm layer: Input 0 is incompatible with layer lstm_4: expected ndim=3, found ndim=2'],
];

describe('layer arguments are refused with the config', () => {
  it.each(BAD_LAYERS)('%s', (_what, layer, message) => {
    const config = minimal();
    config.model.layers[0] = layer;
    expect(refusal(config).message).toBe(message);
  });

  it.each(BAD_LATER_LAYERS)('%s', (_what, layer, message) => {
    const config = minimal();
    config.model.layers.splice(3, 1, layer);
    expect(refusal(config).message).toBe(message);
  });

  it('accepts what tfjs accepts', () => {
    const config = minimal();
    config.model.layers = [
      { type: 'conv2d', filters: 8, kernelSize: [3, 5], strides: [1, 2], padding: 'same', dataFormat: 'channelsLast', name: 'first.conv-1' },
      { type: 'maxPooling2d', poolSize: [2, 2], strides: 2, padding: 'valid' },
      { type: 'reshape', targetShape: [-1, 8] },
      // (tfjs writes null over the -1 of the array it is given: the config's own must stay as written)
      { type: 'conv1d', filters: 4, kernelSize: 2, padding: 'same', dilationRate: 1 },
      { type: 'lstm', units: 4, dropout: 0, recurrentDropout: 0.5 },
      { type: 'dropout', rate: 0 },
      { type: 'dense', units: 10, activation: 'softmax' },
    ];
    const parsed = parseRunConfig(config, { defaultName: 'ok' });
    expect((parsed.model as { layers: { targetShape?: number[] }[] }).layers[2]!.targetShape).toEqual([-1, 8]);
  });
});

describe('sizes are bounded', () => {
  /** [what, change, expected message] */
  const CASES: [string, (c: Record<string, any>) => void, string][] = [
    ['epochs 1e9', (c) => (c.training.epochs = 1e9), 'training.epochs: expected an integer from 1 to 1,000,000 (a bound against typos: a million epochs is already more than any run here needs), found 1000000000'],
    ['epochs 1e308', (c) => (c.training.epochs = 1e308), 'training.epochs: expected an integer from 1 to 1,000,000 (a bound against typos: a million epochs is already more than any run here needs), found 1e+308'],
    ['batchSize 1e9', (c) => (c.training.batchSize = 1e9), 'training.batchSize: expected an integer from 1 to 1,048,576 (a bound against typos: the largest dataset here, mnist, has 60,000 samples), found 1000000000'],
    ['data.samples 1e12', (c) => (c.data = { source: 'linear', samples: 1e12 }), 'data.samples: expected an integer from 1 to 10,000,000 (synthetic points are generated in memory), found 1000000000000'],
    ['a step timeout past Node\'s longest timer', (c) => (c.parallel.stepTimeoutMs = 2 ** 31), "parallel.stepTimeoutMs: expected an integer from 1 to 2,147,483,647 (Node's longest timer, 24.8 days; a longer one fires at once), found 2147483648"],
    ['learningRate 1e21 (the first step diverges)', (c) => (c.optimizer = { name: 'sgd', learningRate: 1e21 }), 'optimizer.learningRate: expected a number <= 10 (larger steps diverge at once; this is a bound against typos), found 1e+21'],
    ['momentum 1', (c) => (c.optimizer = { name: 'sgd', momentum: 1 }), 'optimizer.momentum: expected a number < 1 (at 1 or more the velocity never decays and the updates grow without bound), found 1'],
    ['a name too long for a folder', (c) => (c.name = 'n'.repeat(256)), `name: expected a name of at most 255 characters (it names the run's folder), found "${'n'.repeat(40)}"... (256 characters)`],
    ['a 5000-character path', (c) => (c.output = { dir: 'd'.repeat(5000) }), `output.dir: expected a string of at most 4096 characters, found "${'d'.repeat(40)}"... (5000 characters)`],
    ['2000 layers', (c) => (c.model.layers = Array.from({ length: 2000 }, () => ({ type: 'flatten' }))), 'model.layers: expected an array of at most 1024 items, found 2000 items'],
    ['an input of rank 7', (c) => (c.model.inputShape = [1, 1, 1, 1, 1, 1, 1]), 'model.inputShape: expected an array of at most 5 positive integers (a sample\'s dimensions), e.g. [28, 28, 1], found [1,1,1,1,1,1,1]'],
    ['a long layer type', (c) => (c.model.layers[0].type = 'x'.repeat(100_000)), `model.layers[0].type: expected a string of at most 4096 characters, found "${'x'.repeat(40)}"... (100000 characters)`],
    ['300 unknown keys', (c) => Object.assign(c.training, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]))), 'training: expected an object of at most 256 fields, found 302 fields'],
    [
      'workers past 4 per core',
      (c) => (c.parallel.workers = MAX_WORKERS + 1),
      `parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found ${MAX_WORKERS + 1} (at most 4 replicas per core and this machine has 3: more only share the cores, each is a thread with its own TensorFlow.js and model copy (about 28 MB), and every step waits for the slowest)`,
    ],
  ];

  it.each(CASES)('%s', (_what, change, message) => {
    const config = minimal();
    change(config);
    expect(refusal(config).message).toBe(message);
  });

  it('refuses nesting deeper than 16 levels, walking no deeper', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const config = minimal();
    config.model.layers[0].extra = deep;
    const error = refusal(config);
    expect(error.message).toBe(`model.layers[0].extra${'[0]'.repeat(12)}: expected a value nested at most 16 levels deep, found an array nested deeper`);
    expect(checkDocumentLimits({ a: { b: [1, 'x'] } })).toBeUndefined();
  });

  it('reports malformed JSON nested 100,000 levels deep in one line (the scanner used to overflow the stack)', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'ringtrain-limits-')), 'deep.json');
    await writeFile(file, '['.repeat(100_000));
    await expect(loadRunConfig(file)).rejects.toThrow(
      new ConfigError('', `${file}:1:1001: malformed JSON: expected at most 1000 levels of nesting (a config has a few), found deeper nesting`),
    );
  });

  it('resolveWorkers keeps to the same bound', () => {
    expect(resolveWorkers(MAX_WORKERS)).toBe(MAX_WORKERS);
    expect(() => resolveWorkers(MAX_WORKERS + 1)).toThrow(`found ${MAX_WORKERS + 1} (at most 4 replicas per core`);
  });
});

describe('the model must fit in memory, checked before any weight is allocated', () => {
  it('counts weights and outputs as tfjs does, allocating nothing', async () => {
    const config = parseRunConfig(minimal(), { defaultName: 'count' });
    const spec = config.model as { inputShape: number[]; layers: { type: string }[] };
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const inspection = inspectLayers(spec.inputShape, spec.layers);
    expect(tf.memory().numTensors).toBe(before);
    const model = await buildModel(spec, 1);
    try {
      expect(inspection.ok && inspection.params).toBe(model.countParams());
      expect(inspection.ok && inspection.layers.map((l) => l.outputShape)).toEqual(model.layers.map((l) => (l.outputShape as number[]).slice(1)));
    } finally {
      model.dispose();
    }
    // addWeight is itself again: a real build allocates weights.
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a model whose weights would not fit, naming its largest layer', () => {
    const config = minimal();
    config.model.layers[4].units = 10_000_000; // 1352 x 10,000,000 weights, and 10,000,000 outputs per sample
    const limit = '8.0 GB';
    expect(refusal(config).message).toBe(
      `model.layers[4]: the model would have 13,530,000,080 parameters (this dense layer 13,530,000,000), about 327 GB with gradients and adam state for 1 replica; the limit is ${limit}, half of this machine's memory`,
    );
  });

  it('refuses a batch whose activations would not fit, naming training.batchSize', () => {
    const config = minimal();
    config.model.layers[0] = { type: 'conv2d', filters: 4096, kernelSize: 3, padding: 'same' };
    config.model.layers[1].poolSize = 28;
    config.training.batchSize = 60_000;
    expect(refusal(config).message).toMatch(
      /^training\.batchSize: a batch of 60,000 samples would need about 1\.5 TB for the model's activations and parameters \(model\.layers\[0\] alone outputs 3,211,264 values per sample\); the limit is 8\.0 GB, half of this machine's memory: use a smaller batch or model$/,
    );
  });

  it('checks a topology model once built, before the shared buffers (setup.ts)', () => {
    expect(paramMemoryProblem(100_000, 2, 'adam')).toBeUndefined();
    // 4 bytes x 1e10 x (1 + 2 + 3 x 2) + 2 x 28 MB
    expect(paramMemoryProblem(1e10, 2, 'adam')).toBe(
      `the model has 10,000,000,000 parameters, about 360 GB with gradients and adam state for 2 replicas; the limit is 8.0 GB, half of this machine's memory`,
    );
  });
});
