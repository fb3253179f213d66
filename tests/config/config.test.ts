import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configErrorOf } from '../helpers/config-error.js';
import { ConfigError, UserError } from '../../src/errors.js';
import { findJsonSyntaxError } from '../../src/config/json.js';
import { LAYER_TYPES, isLayerType } from '../../src/config/layers.js';
import { CUSTOM_LAYERS } from '../../src/model/layers/index.js';
import { applyOverrides, loadRunConfig, parseRunConfig, resolveWorkers } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { closestMatch } from '../../src/config/suggest.js';

const CONFIG_DIR = path.resolve('configs');
/** Replicas one process may start on this machine: 4 per core, at most 256. */
const MAX_WORKERS = Math.min(256, 4 * os.availableParallelism());

/** A small valid config; each bad case below breaks one thing in a copy of it. */
function minimal(): Record<string, any> {
  return {
    model: {
      inputShape: [28, 28, 1],
      layers: [{ type: 'flatten' }, { type: 'dense', units: 128, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
    },
    data: { source: 'mnist' },
    loss: 'sparseCategoricalCrossentropy',
    optimizer: 'adam',
    training: { epochs: 5, batchSize: 32 },
  };
}


async function asyncErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-config-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('the shipped configs', () => {
  it('has one file per workload', async () => {
    const files = (await readdir(CONFIG_DIR)).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(['cifar10-cnn.json', 'default.json', 'linear.json', 'majority-lstm.json', 'majority-transformer.json', 'mnist-cnn.json', 'mnist-mlp.json', 'xor.json']);
  });

  it('parses every config in configs/', async () => {
    for (const file of await readdir(CONFIG_DIR)) {
      if (!file.endsWith('.json')) continue;
      const config = await loadRunConfig(path.join(CONFIG_DIR, file));
      expect(config.name).toBe(file === 'default.json' ? 'default' : file.replace(/\.json$/, ''));
      expect(config.output.dir).toBe(`runs/${config.name}`);
    }
  });

  it('xor: 2-3-1 sigmoid net, adam 0.1, batch 4, 1000 epochs, evaluated on train', async () => {
    const c = await loadRunConfig(path.join(CONFIG_DIR, 'xor.json'));
    expect(c.model).toEqual({
      inputShape: [2],
      layers: [
        { type: 'dense', units: 3, activation: 'sigmoid' },
        { type: 'dense', units: 1, activation: 'sigmoid' },
      ],
    });
    expect(c.data).toEqual({ source: 'xor' });
    expect(c.loss).toEqual({ name: 'binaryCrossentropy', fromLogits: false });
    expect(c.metrics).toEqual(['accuracy']);
    expect(c.optimizer).toEqual({ name: 'adam', learningRate: 0.1 });
    expect(c.training).toMatchObject({ epochs: 1000, batchSize: 4 });
    expect(c.evaluation).toEqual({ on: 'train' });
    expect(c.parallel.workers).toBe(2);
  });

  it('linear: one dense unit, sgd 0.01, full batch of 100 points, 1000 steps', async () => {
    const c = await loadRunConfig(path.join(CONFIG_DIR, 'linear.json'));
    expect(c.model).toEqual({ inputShape: [1], layers: [{ type: 'dense', units: 1 }] });
    expect(c.data).toEqual({ source: 'linear', samples: 100 });
    expect(c.loss.name).toBe('meanSquaredError');
    expect(c.optimizer).toEqual({ name: 'sgd', learningRate: 0.01 });
    expect(c.training).toMatchObject({ epochs: 1000, batchSize: 100 });
  });

  it('mnist-mlp, mnist-cnn, cifar10-cnn and default (the CNN on embedded digits) carry the reference hyper-parameters', async () => {
    const mlp = await loadRunConfig(path.join(CONFIG_DIR, 'mnist-mlp.json'));
    expect(mlp.model).toMatchObject({ inputShape: [28, 28, 1] });
    expect(mlp.training).toMatchObject({ epochs: 5, batchSize: 32, validationSplit: 0.2 });
    expect(mlp.loss).toEqual({ name: 'sparseCategoricalCrossentropy', fromLogits: false });
    expect(mlp.optimizer).toEqual({ name: 'adam' });

    const cnn = await loadRunConfig(path.join(CONFIG_DIR, 'mnist-cnn.json'));
    if (!('layers' in cnn.model)) throw new Error('expected layers');
    expect(cnn.model.layers.map((l) => l.type)).toEqual([
      'conv2d', 'maxPooling2d', 'conv2d', 'maxPooling2d', 'conv2d', 'flatten', 'dense', 'dense',
    ]);
    expect(cnn.training).toMatchObject({ epochs: 5, batchSize: 32 });

    const cifar = await loadRunConfig(path.join(CONFIG_DIR, 'cifar10-cnn.json'));
    if (!('layers' in cifar.model)) throw new Error('expected layers');
    expect(cifar.model.inputShape).toEqual([32, 32, 3]);
    expect(cifar.model.layers.at(-1)).toEqual({ type: 'dense', units: 10 });
    expect(cifar.loss).toEqual({ name: 'sparseCategoricalCrossentropy', fromLogits: true });
    expect(cifar.training).toMatchObject({ epochs: 10, batchSize: 32, validateOnTest: true, validationSplit: 0 });
    expect(cifar.data.source).toBe('cifar10');

    const def = await loadRunConfig(path.join(CONFIG_DIR, 'default.json'));
    expect(def.name).toBe('default');
    expect(def.data.source).toBe('embedded-mnist');
    // npm start: the mnist-cnn model on the bundled digits, validating on the last 20 %.
    expect(def.model).toEqual(cnn.model);
    expect(def.training).toEqual({ ...cnn.training, validationSplit: 0.2 });
    expect(def.parallel.workers).toBe('auto');
  });
});

describe('normalization', () => {
  it('fills every default', () => {
    const config: RunConfig = parseRunConfig(minimal(), { defaultName: 'mlp' });
    expect(config).toEqual({
      name: 'mlp',
      model: minimal().model,
      data: { source: 'mnist' },
      loss: { name: 'sparseCategoricalCrossentropy', fromLogits: false },
      metrics: [],
      optimizer: { name: 'adam' },
      training: { epochs: 5, batchSize: 32, shuffle: true, seed: 42, validationSplit: 0, validateOnTest: false, nonFinite: 'stop', accumulateSteps: 1 },
      evaluation: { on: 'test' },
      parallel: { workers: 'auto', stepTimeoutMs: 60000, rendezvousTimeoutMs: 120000, maxRecoveries: 3, syncBatchNorm: false },
      backend: 'auto',
      output: { dir: 'runs/mlp', metricsLog: true },
      checkpoint: { dir: path.join('runs/mlp', 'checkpoints'), everySteps: 0, everySeconds: 60, everyEpoch: false, keepLast: 3, onWriteError: 'stop' },
      report: { tensorboard: { enabled: true, everySteps: 100, histograms: false } },
    });
  });

  it('keeps unspecified optimizer hyper-parameters undefined', () => {
    const config = parseRunConfig({ ...minimal(), optimizer: { name: 'rmsprop', rho: 0.95 } }, { defaultName: 'x' });
    expect(config.optimizer).toEqual({ name: 'rmsprop', rho: 0.95 });
    expect(Object.keys(config.optimizer)).toEqual(['name', 'rho']);
  });

  it('maps shorthands and Keras aliases to canonical names', () => {
    const config = parseRunConfig(
      { ...minimal(), name: 'n', loss: 'sparse_categorical_crossentropy', metrics: ['acc', 'mse', 'mae'], data: 'xor' },
      {},
    );
    expect(config.loss).toEqual({ name: 'sparseCategoricalCrossentropy', fromLogits: false });
    expect(config.metrics).toEqual(['accuracy', 'meanSquaredError', 'meanAbsoluteError']);
    expect(config.data).toEqual({ source: 'xor' });
    expect(parseRunConfig({ ...minimal(), name: 'n', loss: 'mse' }).loss.name).toBe('meanSquaredError');
    expect(parseRunConfig({ ...minimal(), name: 'n', loss: { name: 'binary_crossentropy', fromLogits: true } }).loss).toEqual({
      name: 'binaryCrossentropy',
      fromLogits: true,
    });
  });

  it('uses the name from the file, then the default name', () => {
    expect(parseRunConfig({ ...minimal(), name: 'given' }, { defaultName: 'file' }).name).toBe('given');
    expect(parseRunConfig({ ...minimal(), output: { dir: 'elsewhere' } }, { defaultName: 'file' }).output).toEqual({
      dir: 'elsewhere',
      metricsLog: true,
    });
  });

  it('is idempotent: a normalized config parses to itself', async () => {
    for (const file of await readdir(CONFIG_DIR)) {
      const config = await loadRunConfig(path.join(CONFIG_DIR, file));
      expect(parseRunConfig(structuredClone(config))).toEqual(config);
    }
  });

  it('resolves model.topology against the config file folder, leaving URLs alone', async () => {
    const dir = path.join(tmp, 'topo');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'pretrained.json');
    const { model: _model, ...rest } = minimal();
    await writeFile(file, JSON.stringify({ ...rest, model: { topology: 'models/model.json' } }));
    const config = await loadRunConfig(file);
    expect(config.name).toBe('pretrained');
    expect(config.model).toEqual({ topology: path.join(dir, 'models', 'model.json') });

    expect(parseRunConfig({ ...rest, name: 'u', model: { topology: 'https://example.com/m/model.json' } }, { baseDir: dir }).model).toEqual({
      topology: 'https://example.com/m/model.json',
    });
    expect(parseRunConfig({ ...rest, name: 'u', model: { topology: 'm.json' } }, { baseDir: '/base' }).model).toEqual({
      topology: path.resolve('/base', 'm.json'),
    });
  });
});

describe('layer types', () => {
  it('are the layer factories of tf.layers (tfjs-layers 4.22)', () => {
    for (const t of ['dense', 'conv2d', 'maxPooling2d', 'flatten', 'dropout', 'batchNormalization', 'lstm', 'avgPool2d', 'inputLayer']) {
      expect(isLayerType(t), t).toBe(true);
    }
    for (const t of ['input', 'Layer', 'RNN', 'RNNCell', 'lstmCell', 'gruCell', 'simpleRNNCell', 'stackedRNNCells', 'Dense', 'constructor', 'toString']) {
      expect(isLayerType(t), t).toBe(false);
    }
    const layers = tfl.layers as unknown as Record<string, unknown>;
    // The project's own layers (src/model/layers/) come on top.
    for (const t of LAYER_TYPES) expect(typeof (layers[t] ?? CUSTOM_LAYERS[t]), t).toBe('function');
    expect(Object.keys(CUSTOM_LAYERS).every((t) => LAYER_TYPES.includes(t) && layers[t] === undefined)).toBe(true);
    expect(LAYER_TYPES.length).toBeGreaterThan(60);
  });

  it('suggest the closest name', () => {
    expect(closestMatch('Dense', LAYER_TYPES)).toBe('dense');
    expect(closestMatch('max_pooling2d', LAYER_TYPES)).toBe('maxPooling2d');
    expect(closestMatch('convolution', LAYER_TYPES)).toBeUndefined();
  });
});

/** [what is broken, how, expected ConfigError.path, expected message] */
const BAD_CONFIGS: [string, (c: Record<string, any>) => void, string, string][] = [
  ['unknown top-level field', (c) => { c.epochs = 5; }, 'epochs', 'epochs: unknown field (known fields: name, model, data, loss, metrics, optimizer, training, evaluation, parallel, backend, output, checkpoint, report)'],
  ['report.tensorboard.everySteps -1', (c) => { c.report = { tensorboard: { everySteps: -1 } }; }, 'report.tensorboard.everySteps', 'report.tensorboard.everySteps: expected an integer >= 0 (0: per epoch only), found -1'],
  ['a typo in report.tensorboard', (c) => { c.report = { tensorboard: { histogram: true } }; }, 'report.tensorboard.histogram', 'report.tensorboard.histogram: unknown field (did you mean "histograms"?)'],
  ['unknown nested field with a typo', (c) => { delete c.training.batchSize; c.training.batchSzie = 32; }, 'training.batchSzie', 'training.batchSzie: unknown field (did you mean "batchSize"?)'],
  ['a Keras field name', (c) => { c.optimizer = { name: 'adam', lr: 0.01 }; }, 'optimizer.lr', 'optimizer.lr: unknown field (did you mean "learningRate"?)'],
  ['wrong type', (c) => { c.training.epochs = '5'; }, 'training.epochs', 'training.epochs: expected an integer >= 1, found "5"'],
  ['batchSize 0', (c) => { c.training.batchSize = 0; }, 'training.batchSize', 'training.batchSize: expected an integer >= 1, found 0'],
  ['epochs 1.5', (c) => { c.training.epochs = 1.5; }, 'training.epochs', 'training.epochs: expected an integer >= 1, found 1.5'],
  ['missing epochs', (c) => { delete c.training.epochs; }, 'training.epochs', 'training.epochs: missing required field (expected an integer >= 1)'],
  ['workers 0', (c) => { c.parallel = { workers: 0 }; }, 'parallel.workers', `parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found 0`],
  ['workers "many"', (c) => { c.parallel = { workers: 'many' }; }, 'parallel.workers', `parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found "many"`],
  ['unknown layer type', (c) => { c.model.layers[2].type = 'Dens'; }, 'model.layers[2].type', 'model.layers[2].type: expected a tf.layers factory name such as dense, conv2d, maxPooling2d, flatten or dropout, found "Dens" (did you mean "dense"?)'],
  ['snake_case layer type', (c) => { c.model.layers[1].type = 'max_pooling2d'; }, 'model.layers[1].type', 'model.layers[1].type: expected a tf.layers factory name such as dense, conv2d, maxPooling2d, flatten or dropout, found "max_pooling2d" (did you mean "maxPooling2d"?)'],
  ['inputShape on a layer', (c) => { c.model.layers[0].inputShape = [28, 28, 1]; }, 'model.layers[0].inputShape', 'model.layers[0].inputShape: not allowed on a layer: give the input shape once, as model.inputShape'],
  ['bad input shape', (c) => { c.model.inputShape = [28, 0]; }, 'model.inputShape[1]', 'model.inputShape[1]: expected an integer >= 1, found 0'],
  ['layers and topology', (c) => { c.model.topology = 'model.json'; }, 'model.inputShape', 'model.inputShape: not allowed together with model.topology (a model is either inputShape + layers, or a topology file)'],
  ['unknown optimizer (shorthand)', (c) => { c.optimizer = 'adma'; }, 'optimizer', 'optimizer: expected one of sgd, adam, adamw, rmsprop, found "adma" (did you mean "adam"?)'],
  ['unknown optimizer (object)', (c) => { c.optimizer = { name: 'adma' }; }, 'optimizer.name', 'optimizer.name: expected one of sgd, adam, adamw, rmsprop, found "adma" (did you mean "adam"?)'],
  ['optimizer option that does not belong', (c) => { c.optimizer = { name: 'sgd', learningRate: 0.1, beta1: 0.9 }; }, 'optimizer.beta1', 'optimizer.beta1: not an option of optimizer sgd (sgd takes learningRate, momentum, nesterov, clipNorm, clipValue, globalClipNorm)'],
  ['optimizer option out of range', (c) => { c.optimizer = { name: 'adam', beta2: 1 }; }, 'optimizer.beta2', 'optimizer.beta2: expected a number >= 0 and < 1, found 1'],
  ['unknown field for that optimizer', (c) => { c.optimizer = { name: 'sgd', beta_1: 0.9 }; }, 'optimizer.beta_1', 'optimizer.beta_1: unknown field (known fields: name, learningRate, momentum, nesterov, clipNorm, clipValue, globalClipNorm)'],
  ['unknown loss', (c) => { c.loss = 'crossentropy'; }, 'loss', 'loss: expected one of meanSquaredError, binaryCrossentropy, categoricalCrossentropy, sparseCategoricalCrossentropy, found "crossentropy"'],
  ['misspelt Keras loss', (c) => { c.loss = { name: 'sparse_categorical_crossentrpy' }; }, 'loss.name', 'loss.name: expected one of meanSquaredError, binaryCrossentropy, categoricalCrossentropy, sparseCategoricalCrossentropy, found "sparse_categorical_crossentrpy" (did you mean "sparseCategoricalCrossentropy"?)'],
  ['fromLogits on mse', (c) => { c.loss = { name: 'mse', fromLogits: true }; }, 'loss.fromLogits', 'loss.fromLogits: only applies to the crossentropy losses, not to meanSquaredError'],
  ['unknown metric', (c) => { c.metrics = ['accuracy', 'f1']; }, 'metrics[1]', 'metrics[1]: expected one of accuracy, binaryAccuracy, categoricalAccuracy, sparseCategoricalAccuracy, meanSquaredError, meanAbsoluteError, found "f1"'],
  ['duplicate metric through an alias', (c) => { c.metrics = ['acc', 'accuracy']; }, 'metrics[1]', 'metrics[1]: duplicate metric: accuracy is already listed at metrics[0]'],
  ['validationSplit 1', (c) => { c.training.validationSplit = 1; }, 'training.validationSplit', 'training.validationSplit: expected a number >= 0 and < 1, found 1'],
  ['two validation sets', (c) => { c.training.validationSplit = 0.1; c.training.validateOnTest = true; }, 'training.validateOnTest', 'training.validateOnTest: cannot be combined with training.validationSplit 0.1: choose one validation set'],
  ['bad backend', (c) => { c.backend = 'gpu'; }, 'backend', 'backend: expected one of auto, wasm, cpu, tensorflow, found "gpu" (did you mean "cpu"?)'],
  ['bad data source', (c) => { c.data = { source: 'mnst' }; }, 'data.source', 'data.source: expected one of embedded-mnist, mnist, fashion-mnist, cifar10, xor, linear, majority, recall, csv, image-folder, found "mnst" (did you mean "mnist"?)'],
  ['bad evaluation set', (c) => { c.evaluation = { on: 'validation' }; }, 'evaluation.on', 'evaluation.on: expected one of test, train, found "validation"'],
  ['missing section', (c) => { delete c.optimizer; }, 'optimizer', 'optimizer: missing required field (expected an optimizer name or an object such as {"name": "adam", "learningRate": 0.001})'],
  ['null where a number goes', (c) => { c.parallel = { stepTimeoutMs: null }; }, 'parallel.stepTimeoutMs', 'parallel.stepTimeoutMs: expected an integer >= 1, found null'],
  ['a name with a slash', (c) => { c.name = '../x'; }, 'name', 'name: expected a non-empty name without "/" or "\\", found "../x"'],
  ['a name with a line break (it is printed in one-line messages)', (c) => { c.name = 'run\nsecond line'; }, 'name', 'name: expected a name without control characters (line breaks, tabs, ...), found "run\\nsecond line"'],
  ['a layer that is not an object', (c) => { c.model.layers[0] = 'flatten'; }, 'model.layers[0]', 'model.layers[0]: expected a layer object such as {"type": "dense", "units": 10}, found "flatten"'],
  ['a misspelt layer argument (tfjs would ignore it)', (c) => { c.model.layers[1].activaton = 'relu'; }, 'model.layers[1].activaton', 'model.layers[1].activaton: unknown argument of layer dense (did you mean "activation"?)'],
  ['a Keras snake_case layer argument', (c) => { c.model.layers[1].use_bias = false; }, 'model.layers[1].use_bias', 'model.layers[1].use_bias: unknown argument of layer dense (did you mean "useBias"?)'],
  ['a layer argument with no near match', (c) => { c.model.layers[0].units = 3; }, 'model.layers[0].units', 'model.layers[0].units: unknown argument of layer flatten (flatten takes dataFormat)'],
  ['an unknown activation', (c) => { c.model.layers[2].activation = 'softmaxx'; }, 'model.layers[2].activation', 'model.layers[2].activation: expected one of elu, hardSigmoid, linear, relu, relu6, selu, sigmoid, softmax, softplus, softsign, tanh, swish, mish, gelu, gelu_new, found "softmaxx" (did you mean "softmax"?)'],
];

describe('bad configs', () => {
  it.each(BAD_CONFIGS)('%s', (_what, breakIt, expectedPath, expectedMessage) => {
    const config = minimal();
    breakIt(config);
    const error = configErrorOf(() => parseRunConfig(config, { defaultName: 'test' }));
    expect(error.message).toBe(expectedMessage);
    expect(error.path).toBe(expectedPath);
    expect(error).toBeInstanceOf(UserError);
  });

  it('rejects a document that is not an object', () => {
    expect(configErrorOf(() => parseRunConfig([1, 2], { defaultName: 'x' })).message).toBe('expected an object (the run config), found [1,2]');
  });

  it('needs a name when there is no file to take it from', () => {
    expect(configErrorOf(() => parseRunConfig(minimal())).message).toBe(
      'name: missing required field (a config that is not loaded from a file has no default name)',
    );
  });

  it('reports the first problem and lists the others in the hint', () => {
    const config = minimal();
    config.training.batchSize = 0;
    config.training.epochs = 0;
    config.backend = 'gpu';
    const error = configErrorOf(() => parseRunConfig(config, { defaultName: 'x' }));
    expect(error.message).toBe('training.epochs: expected an integer >= 1, found 0');
    expect(error.hint).toBe(
      '2 more problems: training.batchSize: expected an integer >= 1, found 0; backend: expected one of auto, wasm, cpu, tensorflow, found "gpu" (did you mean "cpu"?)',
    );
  });

  it('puts a misspelt field before the field it leaves missing', () => {
    const config = minimal();
    delete config.training.epochs;
    config.training.epoch = 5;
    const error = configErrorOf(() => parseRunConfig(config, { defaultName: 'x' }));
    expect(error.message).toBe('training.epoch: unknown field (did you mean "epochs"?)');
    expect(error.hint).toBe('1 more problem: training.epochs: missing required field (expected an integer >= 1)');
  });
});

describe('loadRunConfig', () => {
  async function write(name: string, text: string): Promise<string> {
    const file = path.join(tmp, name);
    await writeFile(file, text);
    return file;
  }

  it('names a missing file', async () => {
    const file = path.join(tmp, 'nope.json');
    const error = await asyncErrorOf(loadRunConfig(file));
    expect(error.message).toBe(`${file}: config file not found`);
  });

  it('names a directory given as a config', async () => {
    const error = await asyncErrorOf(loadRunConfig(tmp));
    expect(error.message).toBe(`${tmp}: is a directory, not a config file`);
  });

  const MALFORMED: [string, string, string][] = [
    ['trailing comma', '{\n  "name": "x",\n  "training": { "epochs": 1, }\n}\n', '3:30: malformed JSON: expected a double-quoted property name after ",", found "}" (trailing commas are not allowed in JSON)'],
    ['missing comma', '{\n  "a": 1\n  "b": 2\n}', '3:3: malformed JSON: expected "," or "}" after a property value, found the string "b"'],
    ['unquoted key', '{ name: "x" }', '1:3: malformed JSON: expected a double-quoted property name, found name (unquoted text; strings and property names need double quotes)'],
    ['missing value', '{\n  "a": }', '2:8: malformed JSON: expected a value (string, number, object, array, true, false or null), found "}"'],
    ['comment', '// run\n{}', '1:1: malformed JSON: expected a value (string, number, object, array, true, false or null), found "/" (comments are not allowed in JSON)'],
    ['single quotes', "{\"a\": 'b'}", `1:7: malformed JSON: expected a value (string, number, object, array, true, false or null), found "'" (JSON strings need double quotes)`],
    ['truncated', '{\n  "a": [1, 2', '2:13: malformed JSON: expected "," or "]" after an array element, found the end of the file'],
    ['empty file', '', '1:1: malformed JSON: expected a JSON value, found an empty file'],
    ['text after the value', '{}\n}', '2:1: malformed JSON: expected the end of the file after the JSON value, found "}"'],
  ];

  it.each(MALFORMED)('reports malformed JSON with line:column (%s)', async (_what, text, expected) => {
    const file = await write('bad.json', text);
    const error = await asyncErrorOf(loadRunConfig(file));
    expect(error.message).toBe(`${file}:${expected}`);
  });

  it('finds an error wherever JSON.parse does, and none in valid JSON', async () => {
    const valid = [
      '{"a": [1, -2.5e+3, 0.1, "x\\"\\u00e9\\n", true, false, null, {}, []]}',
      ' \r\n 0 ',
      ...(await Promise.all((await readdir(CONFIG_DIR)).map((f) => readFile(path.join(CONFIG_DIR, f), 'utf8')))),
    ];
    for (const text of valid) expect(findJsonSyntaxError(text), text).toBeUndefined();
    const invalid = ['01', '1.', '-', '"\\x"', '"\\u12"', '"a\tb"', '{"a" 1}', '[1,]', 'nul', '{"a":1}}', '"abc', 'NaN', '1e', '{,}'];
    for (const text of invalid) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(findJsonSyntaxError(text), text).toBeDefined();
    }
  });

  it('accepts a UTF-8 byte-order mark', async () => {
    const file = await write('bom.json', `\ufeff${JSON.stringify(minimal())}`);
    expect((await loadRunConfig(file)).name).toBe('bom');
  });

  it('prefixes schema errors with the file name', async () => {
    const config = minimal();
    config.training.batchSize = 0;
    const file = await write('zero.json', JSON.stringify(config));
    const error = await asyncErrorOf(loadRunConfig(file));
    expect(error.message).toBe(`${file}: training.batchSize: expected an integer >= 1, found 0`);
    expect(error.path).toBe('training.batchSize');
  });
});

describe('applyOverrides', () => {
  const base = () => parseRunConfig(minimal(), { defaultName: 'base' });

  it('applies and re-validates command-line values', () => {
    const config = applyOverrides(base(), {
      workers: 3,
      epochs: 2,
      batchSize: 64,
      seed: 7,
      backend: 'wasm',
      dataDir: '/data/mnist',
      out: 'runs/try',
    });
    expect(config.parallel.workers).toBe(3);
    expect(config.training).toMatchObject({ epochs: 2, batchSize: 64, seed: 7 });
    expect(config.backend).toBe('wasm');
    expect(config.data.dir).toBe('/data/mnist');
    expect(config.output.dir).toBe('runs/try');
  });

  it('leaves the input alone and ignores undefined values and other flags', () => {
    const original = base();
    const copy = structuredClone(original);
    expect(applyOverrides(original, { epochs: undefined })).toEqual(copy);
    expect(applyOverrides(original, { json: true } as never)).toEqual(copy);
    applyOverrides(original, { epochs: 9 });
    expect(original).toEqual(copy);
  });

  it('accepts numbers typed as strings', () => {
    const config = applyOverrides(base(), { workers: '4', epochs: '3', batchSize: ' 16 ' });
    expect(config.parallel.workers).toBe(4);
    expect(config.training).toMatchObject({ epochs: 3, batchSize: 16 });
    expect(applyOverrides(base(), { workers: 'auto' }).parallel.workers).toBe('auto');
  });

  const BAD_FLAGS: [Record<string, unknown>, string][] = [
    [{ batchSize: 0 }, '--batch-size: expected an integer >= 1, found 0'],
    [{ epochs: 1.5 }, '--epochs: expected an integer >= 1, found 1.5'],
    [{ epochs: 'ten' }, '--epochs: expected an integer >= 1, found "ten"'],
    [{ workers: 0 }, `--workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found 0`],
    [{ workers: 'many' }, `--workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found "many"`],
    [{ seed: -1 }, '--seed: expected an integer from 0 to 4294967295, found -1'],
    [{ backend: 'gpu' }, '--backend: expected one of auto, wasm, cpu, tensorflow, found "gpu" (did you mean "cpu"?)'],
    [{ dataDir: '' }, '--data-dir: expected a non-empty string (a directory), found ""'],
    [{ out: '' }, '--out: expected a non-empty string (a directory), found ""'],
  ];

  it.each(BAD_FLAGS)('names the flag: %o', (overrides, expected) => {
    const error = configErrorOf(() => applyOverrides(base(), overrides as never));
    expect(error.message).toBe(expected);
  });
});

describe('resolveWorkers', () => {
  it("resolves 'auto' to the available parallelism and keeps numbers", () => {
    expect(resolveWorkers('auto')).toBe(os.availableParallelism());
    expect(resolveWorkers(3)).toBe(3);
    expect(configErrorOf(() => resolveWorkers(0)).message).toBe(`parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found 0`);
  });

  it("'auto' shares the cores among the processes a launcher started on this machine, one thread at least", () => {
    const cores = os.availableParallelism();
    expect(resolveWorkers('auto', 2)).toBe(Math.max(1, Math.floor(cores / 2)));
    expect(resolveWorkers('auto', cores * 4)).toBe(1);
    // An explicit count stays what it says.
    expect(resolveWorkers(3, 2)).toBe(3);
  });
});
