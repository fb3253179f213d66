/**
 * Bad input, as a user meets it on the command line: each case runs the compiled CLI
 * (dist/cli/main.js) and must exit with code 2, print the exact message (one line, plus a
 * `hint:` line where one helps) without a stack trace, print nothing on stdout (no training
 * started), and fail within seconds.
 *
 * Data files are generated here (tiny IDX and CIFAR files); nothing is downloaded: mnist
 * always gets a local folder and RINGTRAIN_CACHE points into the temp folder.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { formatBytes } from '../../src/config/limits.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'dist/cli/main.js');
/** A guard against hangs, not a speed test: every check runs before the first step. */
const FAIL_WITHIN_MS = 20_000;
/** Replicas one process may start here: 4 per core, at most 256 (src/config/limits.ts). */
const MAX_WORKERS = Math.min(256, 4 * availableParallelism());
const WORKERS_REASON = `at most 4 replicas per core and this machine has ${availableParallelism()}: more only share the cores, each is a thread with its own TensorFlow.js and model copy (about 28 MB), and every step waits for the slowest`;

const tmp = mkdtempSync(join(tmpdir(), 'ringtrain-bad-input-'));
const configDir = join(tmp, 'configs');
const dirs = {
  mnist: join(tmp, 'mnist'),
  mnistBadMagic: join(tmp, 'mnist-bad-magic'),
  mnistTruncated: join(tmp, 'mnist-truncated'),
  mnistLabel12: join(tmp, 'mnist-label-12'),
  mnist32x32: join(tmp, 'mnist-32x32'),
  cifar: join(tmp, 'cifar'),
  cifarWrongSize: join(tmp, 'cifar-wrong-size'),
  cifarLabel10: join(tmp, 'cifar-label-10'),
  empty: join(tmp, 'empty'),
  missing: join(tmp, 'no-such-folder'),
  cache: join(tmp, 'cache'),
};
/** A regular file where a folder is expected. */
const aFile = join(tmp, 'a-file.txt');

// ---------------------------------------------------------------------------------------------
// Generated data
// ---------------------------------------------------------------------------------------------

/** IDX images: magic, count, rows, cols (big-endian uint32), then `pixelBytes` bytes (default all). */
function idxImages(count: number, rows = 28, cols = 28, options: { magic?: number; pixelBytes?: number } = {}): Buffer {
  const out = Buffer.alloc(16 + (options.pixelBytes ?? count * rows * cols), 7);
  out.writeUInt32BE(options.magic ?? 0x00000803, 0);
  out.writeUInt32BE(count, 4);
  out.writeUInt32BE(rows, 8);
  out.writeUInt32BE(cols, 12);
  return out;
}

function idxLabels(labels: readonly number[]): Buffer {
  const out = Buffer.alloc(8 + labels.length);
  out.writeUInt32BE(0x00000801, 0);
  out.writeUInt32BE(labels.length, 4);
  labels.forEach((label, i) => (out[8 + i] = label));
  return out;
}

/** The four MNIST files (raw, not gzipped): 8 train and 4 test images, labels 0..7 and 0..3. */
function writeMnist(dir: string, replace: Partial<Record<'trainImages' | 'trainLabels' | 'testImages' | 'testLabels', Buffer>> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), replace.trainImages ?? idxImages(8));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), replace.trainLabels ?? idxLabels([0, 1, 2, 3, 4, 5, 6, 7]));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), replace.testImages ?? idxImages(4));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), replace.testLabels ?? idxLabels([0, 1, 2, 3]));
}

const CIFAR_RECORD = 3073;
const CIFAR_BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch'];

/** Six CIFAR-10 batches of 2 records each (labels 0 and 1); `replace` swaps in other bytes. */
function writeCifar(dir: string, replace: Record<string, Buffer> = {}): void {
  mkdirSync(dir, { recursive: true });
  for (const batch of CIFAR_BATCHES) {
    const bytes = Buffer.alloc(2 * CIFAR_RECORD, 9);
    bytes[0] = 0;
    bytes[CIFAR_RECORD] = 1;
    writeFileSync(join(dir, `${batch}.bin`), replace[batch] ?? bytes);
  }
}

beforeAll(() => {
  mkdirSync(configDir, { recursive: true });
  mkdirSync(dirs.empty, { recursive: true });
  writeFileSync(aFile, 'not a folder\n');
  writeMnist(dirs.mnist);
  writeMnist(dirs.mnistBadMagic, { trainImages: idxImages(8, 28, 28, { magic: 0x00000801 }) });
  writeMnist(dirs.mnistTruncated, { trainImages: idxImages(8, 28, 28, { pixelBytes: 100 }) });
  writeMnist(dirs.mnistLabel12, { trainLabels: idxLabels([0, 1, 2, 12, 4, 5, 6, 7]) });
  writeMnist(dirs.mnist32x32, { testImages: idxImages(4, 32, 32) });
  writeCifar(dirs.cifar);
  writeCifar(dirs.cifarWrongSize, { data_batch_2: Buffer.alloc(2 * CIFAR_RECORD + 100) });
  const label10 = Buffer.alloc(2 * CIFAR_RECORD);
  label10[CIFAR_RECORD] = 10;
  writeCifar(dirs.cifarLabel10, { data_batch_3: label10 });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

/** At most two CLIs at a time: the machine has two cores, shared. */
const slots = (() => {
  let free = 2;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(work: () => Promise<T>): Promise<T> {
      if (free === 0) await new Promise<void>((resolve) => waiting.push(resolve));
      else free--;
      try {
        return await work();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
})();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function ringtrain(argv: readonly string[]): Promise<Run> {
  return slots.run(
    () =>
      new Promise<Run>((resolve, reject) => {
        const start = performance.now();
        const child = spawn(process.execPath, [CLI, ...argv], {
          cwd: tmp,
          env: { ...process.env, RINGTRAIN_CACHE: dirs.cache },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
        const killer = setTimeout(() => child.kill('SIGKILL'), 3 * FAIL_WITHIN_MS);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(killer);
          resolve({ code, stdout, stderr, ms: performance.now() - start });
        });
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

type Config = Record<string, any>;

/** Flatten → Dense(10, softmax) on the generated MNIST folder: 1 epoch, 1 worker, cpu. */
function mnist(patch: (c: Config) => void = () => {}): Config {
  const config: Config = {
    model: { inputShape: [28, 28, 1], layers: [{ type: 'flatten' }, { type: 'dense', units: 10, activation: 'softmax' }] },
    data: { source: 'mnist', dir: dirs.mnist },
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: 'adam',
    training: { epochs: 1, batchSize: 4 },
    parallel: { workers: 1 },
    backend: 'cpu',
  };
  patch(config);
  return config;
}

/** The same model on 32x32x3 images, on the generated CIFAR-10 folder. */
function cifar(patch: (c: Config) => void = () => {}): Config {
  return mnist((c) => {
    c.model.inputShape = [32, 32, 3];
    c.data = { source: 'cifar10', dir: dirs.cifar };
    patch(c);
  });
}

interface BadInput {
  /** Test name; also names the config file. */
  name: string;
  /** The config file: an object (written as JSON) or its raw text. */
  config?: Config | string;
  /** Instead of a written config: this path is the config argument. */
  configPath?: string;
  /** Arguments after `train <config> --no-checkpoints --out <tmp>`. */
  args?: string[];
  /** The whole command line instead (CLI misuse). */
  argv?: string[];
  /** Leave out --no-checkpoints. */
  checkpoints?: boolean;
  /** The exact stderr, line by line; `config` is the config file's path. */
  stderr: (config: string) => string[];
}

const reading = (dir: string) => `mnist: reading ${dir}`;
const MNIST_NEEDS = 'mnist needs train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzip or raw';
const MISSING_MNIST_FILES =
  'missing files train-images-idx3-ubyte.gz (or train-images-idx3-ubyte), train-labels-idx1-ubyte.gz (or train-labels-idx1-ubyte), ' +
  't10k-images-idx3-ubyte.gz (or t10k-images-idx3-ubyte), t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte)';
const ACTIVATIONS = 'elu, hardSigmoid, linear, relu, relu6, selu, sigmoid, softmax, softplus, softsign, tanh, swish, mish, gelu, gelu_new';

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

const CASES: BadInput[] = [
  // --- the config file itself ---
  {
    name: 'malformed JSON: a trailing comma',
    config: '{\n  "model": {\n    "inputShape": [28, 28, 1],\n  }\n}\n',
    stderr: (f) => [`ringtrain: ${f}:4:3: malformed JSON: expected a double-quoted property name after ",", found "}" (trailing commas are not allowed in JSON)`],
  },
  {
    name: 'malformed JSON: a comment',
    config: '{\n  // MNIST\n  "model": {}\n}\n',
    stderr: (f) => [`ringtrain: ${f}:2:3: malformed JSON: expected a double-quoted property name, found "/" (comments are not allowed in JSON)`],
  },
  {
    name: 'malformed JSON: an empty file',
    config: '',
    stderr: (f) => [`ringtrain: ${f}:1:1: malformed JSON: expected a JSON value, found an empty file`],
  },
  {
    name: 'a config that is not an object',
    config: '[1, 2]\n',
    stderr: (f) => [`ringtrain: ${f}: expected an object (the run config), found [1,2]`],
  },
  {
    name: 'a missing config file',
    configPath: join(tmp, 'configs', 'no-such-config.json'),
    stderr: (f) => [`ringtrain: ${f}: config file not found`],
  },
  {
    name: 'a config path that is a directory',
    configPath: dirs.empty,
    stderr: (f) => [`ringtrain: ${f}: is a directory, not a config file`],
  },

  // --- the schema ---
  {
    name: 'an unknown top-level field (a typo of a required one)',
    config: mnist((c) => {
      c.trainig = c.training;
      delete c.training;
    }),
    stderr: (f) => [
      `ringtrain: ${f}: trainig: unknown field (did you mean "training"?)`,
      'hint: 1 more problem: training: missing required field (expected an object such as {"epochs": 5, "batchSize": 32})',
    ],
  },
  {
    name: 'an unknown nested field',
    config: mnist((c) => (c.training = { epochs: 1, batchSzie: 4 })),
    stderr: (f) => [
      `ringtrain: ${f}: training.batchSzie: unknown field (did you mean "batchSize"?)`,
      'hint: 1 more problem: training.batchSize: missing required field (expected an integer >= 1)',
    ],
  },
  {
    name: 'a Keras field name',
    config: mnist((c) => (c.optimizer = { name: 'adam', lr: 0.01 })),
    stderr: (f) => [`ringtrain: ${f}: optimizer.lr: unknown field (did you mean "learningRate"?)`],
  },
  {
    name: 'a wrong type: a number as a string',
    config: mnist((c) => (c.training.epochs = '5')),
    stderr: (f) => [`ringtrain: ${f}: training.epochs: expected an integer >= 1, found "5"`],
  },
  {
    name: 'a wrong type: a string for a list',
    config: mnist((c) => (c.metrics = 'accuracy')),
    stderr: (f) => [`ringtrain: ${f}: metrics: expected an array of metric names, e.g. ["accuracy"], found "accuracy"`],
  },
  {
    name: 'an unknown layer type',
    config: mnist((c) => (c.model.layers[0].type = 'flaten')),
    stderr: (f) => [
      `ringtrain: ${f}: model.layers[0].type: expected a tf.layers factory name such as dense, conv2d, maxPooling2d, flatten or dropout, found "flaten" (did you mean "flatten"?)`,
    ],
  },
  {
    name: 'a misspelt layer argument (tfjs alone would ignore it)',
    config: mnist((c) => (c.model.layers[1] = { type: 'dense', units: 10, activaton: 'softmax' })),
    stderr: (f) => [`ringtrain: ${f}: model.layers[1].activaton: unknown argument of layer dense (did you mean "activation"?)`],
  },
  {
    name: 'an unknown activation',
    config: mnist((c) => (c.model.layers[1].activation = 'softmaxx')),
    stderr: (f) => [`ringtrain: ${f}: model.layers[1].activation: expected one of ${ACTIVATIONS}, found "softmaxx" (did you mean "softmax"?)`],
  },
  {
    name: 'an unknown optimizer',
    config: mnist((c) => (c.optimizer = 'adma')),
    stderr: (f) => [`ringtrain: ${f}: optimizer: expected one of sgd, adam, adamw, rmsprop, found "adma" (did you mean "adam"?)`],
  },
  {
    name: 'an optimizer option that does not belong to it',
    config: mnist((c) => (c.optimizer = { name: 'sgd', learningRate: 0.1, beta1: 0.9 })),
    stderr: (f) => [`ringtrain: ${f}: optimizer.beta1: not an option of optimizer sgd (sgd takes learningRate, momentum, nesterov, clipNorm, clipValue, globalClipNorm)`],
  },
  {
    name: 'an unknown loss',
    config: mnist((c) => (c.loss = 'categoricalCrossEntropy')),
    stderr: (f) => [
      `ringtrain: ${f}: loss: expected one of meanSquaredError, binaryCrossentropy, categoricalCrossentropy, sparseCategoricalCrossentropy, found "categoricalCrossEntropy" (did you mean "categoricalCrossentropy"?)`,
    ],
  },
  {
    name: 'an unknown metric',
    config: mnist((c) => (c.metrics = ['acuracy'])),
    stderr: (f) => [
      `ringtrain: ${f}: metrics[0]: expected one of accuracy, binaryAccuracy, categoricalAccuracy, sparseCategoricalAccuracy, meanSquaredError, meanAbsoluteError, found "acuracy" (did you mean "accuracy"?)`,
    ],
  },
  {
    name: 'an unknown data source',
    config: mnist((c) => (c.data = 'mnsit')),
    stderr: (f) => [`ringtrain: ${f}: data: expected one of embedded-mnist, mnist, fashion-mnist, cifar10, xor, linear, majority, recall, csv, image-folder, found "mnsit" (did you mean "mnist"?)`],
  },
  {
    name: 'batch size 0',
    config: mnist((c) => (c.training.batchSize = 0)),
    stderr: (f) => [`ringtrain: ${f}: training.batchSize: expected an integer >= 1, found 0`],
  },
  {
    name: 'epochs 0',
    config: mnist((c) => (c.training.epochs = 0)),
    stderr: (f) => [`ringtrain: ${f}: training.epochs: expected an integer >= 1, found 0`],
  },
  {
    name: 'fractional epochs',
    config: mnist((c) => (c.training.epochs = 1.5)),
    stderr: (f) => [`ringtrain: ${f}: training.epochs: expected an integer >= 1, found 1.5`],
  },
  {
    name: 'workers 0',
    config: mnist((c) => (c.parallel.workers = 0)),
    stderr: (f) => [`ringtrain: ${f}: parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found 0`],
  },
  {
    name: 'workers over the limit',
    config: mnist((c) => (c.parallel.workers = MAX_WORKERS + 1)),
    stderr: (f) => [`ringtrain: ${f}: parallel.workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found ${MAX_WORKERS + 1} (${WORKERS_REASON})`],
  },
  {
    name: 'an unknown backend',
    config: mnist((c) => (c.backend = 'gpu')),
    stderr: (f) => [`ringtrain: ${f}: backend: expected one of auto, wasm, cpu, tensorflow, found "gpu" (did you mean "cpu"?)`],
  },

  // --- the model, built on the coordinator after the data is read ---
  {
    // Checked with the config, before the data is read (src/config/layer-rules.ts).
    name: 'an impossible layer argument: a negative units count',
    config: mnist((c) => (c.model.layers[1].units = -3)),
    stderr: (f) => [`ringtrain: ${f}: model.layers[1].units: expected an integer from 1 to 16,777,216, found -3`],
  },
  {
    name: 'a kernel larger than its input',
    config: mnist((c) => (c.model.layers = [{ type: 'conv2d', filters: 4, kernelSize: 40 }, { type: 'flatten' }, { type: 'dense', units: 10, activation: 'softmax' }])),
    stderr: (f) => [
      `ringtrain: ${f}: model.layers[0]: cannot build conv2d layer: kernelSize [40, 40] does not fit its input [28, 28, 1] with padding "valid"; expected a kernel of at most 28x28, or padding "same"`,
    ],
  },
  {
    name: 'a dropout rate of 1.5 (tfjs would train with it)',
    config: mnist((c) => c.model.layers.splice(2, 0, { type: 'dropout', rate: 1.5 })),
    stderr: (f) => [`ringtrain: ${f}: model.layers[2].rate: expected a number >= 0 and < 1, found 1.5`],
  },
  {
    // 7.85e9 float32 weights, each held 6 times (coordinator, 2 adam arrays, gradient slot, the
    // replica's weights and gradients): 188.4 GB, + 28 MB for the replica + 0.3 GB of activations (4 x 1e7 x 8 bytes).
    name: 'a model too large for this machine (a dense layer of ten million units)',
    config: mnist((c) => (c.model.layers[1].units = 10_000_000)),
    stderr: (f) => [
      `ringtrain: ${f}: model.layers[1]: the model would have 7,850,000,000 parameters (this dense layer 7,850,000,000), about 189 GB with gradients and adam state for 1 replica; the limit is ${formatBytes(totalmem() / 2)}, half of this machine's memory`,
    ],
  },
  {
    name: 'an input shape that does not match the data',
    config: mnist((c) => (c.model.inputShape = [32, 32, 3])),
    stderr: () => [reading(dirs.mnist), "ringtrain: model input shape [32, 32, 3] does not match the data's sample shape [28, 28, 1] (mnist/train)"],
  },
  {
    name: 'labels out of range for the loss (5 classes, labels up to 7)',
    config: mnist((c) => (c.model.layers[1].units = 5)),
    stderr: () => [
      reading(dirs.mnist),
      'ringtrain: mnist/train: label 5 of sample 5 is out of range for sparseCategoricalCrossentropy with 5 classes (expected an integer from 0 to 4)',
    ],
  },
  {
    name: 'a validation split that leaves no validation sample',
    config: mnist((c) => (c.training.validationSplit = 0.1)),
    stderr: () => [reading(dirs.mnist), 'ringtrain: training.validationSplit: expected at least 1/8 (one validation sample out of the 8 samples of mnist/train), found 0.1'],
  },

  // --- data files ---
  {
    name: 'mnist files missing from --data-dir',
    config: mnist(),
    args: ['--data-dir', dirs.empty],
    stderr: () => [
      `ringtrain: mnist: ${MISSING_MNIST_FILES} in ${dirs.empty}; expected the four IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (gzip or raw)`,
    ],
  },
  {
    name: 'a --data-dir that does not exist',
    config: mnist(),
    args: ['--data-dir', dirs.missing],
    stderr: () => [`ringtrain: mnist: data folder ${dirs.missing} does not exist`, `hint: ${MNIST_NEEDS}`],
  },
  {
    name: 'a data.dir that is a file',
    config: mnist((c) => (c.data.dir = aFile)),
    stderr: () => [`ringtrain: mnist: ${aFile} is a file, expected a data folder`, `hint: ${MNIST_NEEDS}`],
  },
  {
    name: 'mnist without a folder, offline (download off, empty cache)',
    config: mnist((c) => (c.data = { source: 'mnist', download: false })),
    stderr: () => [
      `ringtrain: train-images-idx3-ubyte.gz is not in the cache folder ${join(dirs.cache, 'mnist')} and downloading is off (data.download is false); ` +
        `put the files in a folder and pass --data-dir DIR (${MNIST_NEEDS})`,
    ],
  },
  {
    name: 'an IDX file with a bad magic number',
    config: mnist(),
    args: ['--data-dir', dirs.mnistBadMagic],
    stderr: () => [
      reading(dirs.mnistBadMagic),
      `ringtrain: ${join(dirs.mnistBadMagic, 'train-images-idx3-ubyte')}: bad magic number 0x00000801, expected 0x00000803 (IDX images)`,
    ],
  },
  {
    name: 'a truncated IDX file',
    config: mnist(),
    args: ['--data-dir', dirs.mnistTruncated],
    stderr: () => [
      reading(dirs.mnistTruncated),
      `ringtrain: ${join(dirs.mnistTruncated, 'train-images-idx3-ubyte')}: truncated: header says 8 images of 28x28 (6288 bytes) but the file has 116 bytes`,
    ],
  },
  {
    name: 'IDX images of the wrong size',
    config: mnist(),
    args: ['--data-dir', dirs.mnist32x32],
    stderr: () => [reading(dirs.mnist32x32), `ringtrain: ${join(dirs.mnist32x32, 't10k-images-idx3-ubyte')}: images are 32x32, expected 28x28`],
  },
  {
    name: 'an IDX label of 12 (the IDX reader checks 0..9 first)',
    config: mnist(),
    args: ['--data-dir', dirs.mnistLabel12],
    stderr: () => [reading(dirs.mnistLabel12), `ringtrain: ${join(dirs.mnistLabel12, 'train-labels-idx1-ubyte')}: label 12 at index 3 is out of range, expected 0..9`],
  },
  {
    name: 'a CIFAR batch of the wrong size',
    config: cifar((c) => (c.data.dir = dirs.cifarWrongSize)),
    stderr: () => [
      `cifar10: reading ${dirs.cifarWrongSize}`,
      `ringtrain: ${join(dirs.cifarWrongSize, 'data_batch_2.bin')}: size 6246 bytes is not a multiple of the CIFAR-10 record size 3073 (1 label byte + 3072 pixel bytes); 2 whole records and 100 bytes left over`,
    ],
  },
  {
    name: 'a CIFAR label out of range',
    config: cifar((c) => (c.data.dir = dirs.cifarLabel10)),
    stderr: () => [`cifar10: reading ${dirs.cifarLabel10}`, `ringtrain: ${join(dirs.cifarLabel10, 'data_batch_3.bin')}: record 1 has label 10, expected 0..9`],
  },

  // --- backends ---
  {
    name: '--backend with an unknown name',
    config: mnist(),
    args: ['--backend', 'webgl'],
    stderr: () => ['ringtrain: --backend: expected one of auto, wasm, cpu, tensorflow, found "webgl"'],
  },
  ...(tfjsNodeInstalled()
    ? []
    : [
        {
          name: 'backend "tensorflow" without tfjs-node',
          config: mnist((c) => (c.backend = 'tensorflow')),
          stderr: () => [
            'ringtrain: backend "tensorflow" needs @tensorflow/tfjs-node, which is not installed or does not load here',
            'hint: use --backend wasm (the default fallback) or install @tensorflow/tfjs-node',
          ],
        },
      ]),

  // --- command-line misuse (commander's own messages) ---
  {
    name: 'an unknown command',
    argv: ['trian', 'x.json'],
    stderr: () => ["error: unknown command 'trian'", '(Did you mean train?)'],
  },
  {
    name: 'an unknown option',
    config: mnist(),
    args: ['--wrokers', '2'],
    stderr: () => ["error: unknown option '--wrokers'", '(Did you mean --workers?)'],
  },
  {
    name: 'no config argument',
    argv: ['train'],
    stderr: () => ["error: missing required argument 'config'"],
  },
  {
    name: '--epochs abc',
    config: mnist(),
    args: ['--epochs', 'abc'],
    stderr: () => [`error: option '--epochs <n>' argument 'abc' is invalid. --epochs expects an integer >= 1, found "abc"`],
  },
  {
    name: '--workers 0',
    config: mnist(),
    args: ['--workers', '0'],
    stderr: () => [`error: option '--workers <n>' argument '0' is invalid. --workers expects an integer >= 1, found "0"`],
  },
  {
    name: '--workers over the limit',
    config: mnist(),
    args: ['--workers', String(MAX_WORKERS + 1)],
    stderr: () => [`ringtrain: --workers: expected an integer from 1 to ${MAX_WORKERS} or "auto", found ${MAX_WORKERS + 1} (${WORKERS_REASON})`],
  },
  {
    name: '--batch-size 0',
    config: mnist(),
    args: ['--batch-size', '0'],
    stderr: () => [`error: option '--batch-size <n>' argument '0' is invalid. --batch-size expects an integer >= 1, found "0"`],
  },  {
    name: '--seed abc',
    config: mnist(),
    args: ['--seed', 'abc'],
    stderr: () => ['ringtrain: --seed: expected an integer from 0 to 4294967295, found "abc"'],
  },
  {
    name: '--out that is a file',
    config: mnist(),
    args: ['--out', aFile],
    stderr: () => [`ringtrain: --out: ${aFile} is a file, not a folder`],
  },
  {
    name: 'checkpoint.monitor naming a metric the run does not have',
    config: mnist((c) => (c.checkpoint = { monitor: 'val_acc' })),
    checkpoints: true,
    stderr: () => [reading(dirs.mnist), 'ringtrain: checkpoint.monitor: expected an epoch metric of this run (loss, accuracy), found "val_acc"'],
  },
  {
    name: 'a model.topology file that does not exist',
    config: mnist((c) => (c.model = { topology: 'no-such-model.json' })),
    stderr: () => [reading(dirs.mnist), `ringtrain: model.topology: cannot read ${join(configDir, 'no-such-model.json')}: file not found`],
  },
];

/**
 * Inputs whose message is not yet what it should be: the expectation is the message proposed
 * for the owner of the code that gives it (see each case's comment for today's output).
 */
const TO_IMPROVE: BadInput[] = [
  // (The kernel larger than its input moved to CASES: the config check words it as proposed.)
];

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
}

/** Writes the case's config (if any) and returns its command line and config path. */
function commandLine(c: BadInput): { argv: string[]; configPath: string } {
  if (c.argv) return { argv: c.argv, configPath: '' };
  let configPath = c.configPath;
  if (configPath === undefined) {
    configPath = join(configDir, `${slug(c.name)}.json`);
    writeFileSync(configPath, typeof c.config === 'string' ? c.config : JSON.stringify(c.config, null, 2));
  }
  const flags = [...(c.checkpoints ? [] : ['--no-checkpoints']), '--out', join(tmp, 'runs', slug(c.name))];
  return { argv: ['train', configPath, ...flags, ...(c.args ?? [])], configPath };
}

function defineCases(cases: readonly BadInput[]): void {
  for (const c of cases) {
    it.concurrent(c.name, async ({ expect }) => {
      const { argv, configPath } = commandLine(c);
      const run = await ringtrain(argv);
      expect(run.stderr).toBe(`${c.stderr(configPath).join('\n')}\n`);
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.ms).toBeLessThan(FAIL_WITHIN_MS);
    }, 4 * FAIL_WITHIN_MS);
  }
}

describe('bad input gets one clear line, exit code 2, before any training', () => {
  it('has a case for each kind of bad input', () => {
    if (CASES.length < 30) throw new Error(`only ${CASES.length} cases`);
  });

  // The base configs are valid: each case fails for the one thing it breaks.
  it.concurrent('the base configs train', async ({ expect }) => {
    for (const [name, config] of [['base-mnist', mnist()], ['base-cifar', cifar()]] as const) {
      const run = await ringtrain(commandLine({ name, config, args: ['--json'], stderr: () => [] }).argv);
      expect(run.stderr).not.toContain('ringtrain:');
      expect(run.code).toBe(0);
    }
  }, 4 * FAIL_WITHIN_MS);

  defineCases(CASES);
});

describe.skip('messages to improve', () => {
  defineCases(TO_IMPROVE);
});
