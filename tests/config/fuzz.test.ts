/**
 * Config fuzzing (issue 12): several hundred configs made by mutating the shipped ones
 * (configs/*.json) with a fixed seed: fields deleted, wrong types, out-of-range and huge
 * numbers, very long strings, huge lists, unknown layer types and keys, bad layer arguments,
 * broken JSON text, deep nesting, whole documents of the wrong kind, and combinations.
 *
 * Every case must end, within a deadline, either refused with a UserError whose message is one
 * line naming the field (or, for a document that is not a config at all, the file), or accepted.
 * Cases run through what `ringtrain train FILE` runs first (loadRunConfig + applyOverrides) in a
 * worker thread, which is terminated if a case passes its deadline. A sample of refused cases
 * then runs through the real CLI (exit 2, one line plus an optional hint, no stack), and a
 * sample of accepted ones trains for one short epoch (exit 0, or 2 with one line: never a stack).
 * The checks see a fixed machine (FIXED_MACHINE), so the outcomes do not depend on this one.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CORES_ENV, TEST_TOTALMEM_ENV } from '../../src/config/limits.js';
import { mulberry32 } from '../../src/util/random.js';
import { inPairs, root, runCli, type CliRun } from '../helpers/processes.js';

/** Fixed in CI; RINGTRAIN_FUZZ_SEED explores others locally (RINGTRAIN_FUZZ_VERBOSE=1 lists the accepted cases, RINGTRAIN_FUZZ_SHOW=3,14 shows those cases). */
const SEED = Number(process.env.RINGTRAIN_FUZZ_SEED ?? 12);
const CASES = 300;
/** Per case, in the worker: the checks take milliseconds; a case that takes this long hangs. */
const CASE_DEADLINE_MS = 5_000;
/** Per CLI run (a refused config fails in about a second; a sampled run trains a few steps). */
const CLI_DEADLINE_MS = 60_000;
const CLI_REFUSED = 10;
const CLI_ACCEPTED = 4;
/** Accepted configs run for a few steps only when their model is this small. */
const SHORT_RUN_MAX_PARAMS = 1_000_000;
/** What the CLI cases pass, and so what the in-process check applies too. */
const OVERRIDES = { epochs: 1 };

/**
 * The machine the checks see (limits.ts' test-only variables), so that the outcomes are the same
 * on every machine: the workers bound (4 per core) and the memory estimate (half the memory)
 * depend on it. 2 cores (at most 8 workers) and 8 GB.
 */
const FIXED_MACHINE = { [TEST_CORES_ENV]: '2', [TEST_TOTALMEM_ENV]: String(8e9) };

const tmp = mkdtempSync(join(tmpdir(), 'ringtrain-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

type Json = any;
type Path = (string | number)[];

const random = mulberry32(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Every node below the root, by path. */
function paths(doc: Json, at: Path = []): Path[] {
  if (doc === null || typeof doc !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(doc) ? doc.map((_, i) => i) : Object.keys(doc);
  return keys.flatMap((k) => [[...at, k], ...paths(doc[k], [...at, k])]);
}

function get(doc: Json, path: Path): Json {
  return path.reduce((node, key) => node?.[key], doc);
}

function set(doc: Json, path: Path, value: Json): void {
  get(doc, path.slice(0, -1))[path.at(-1)!] = value;
}

function remove(doc: Json, path: Path): void {
  const parent = get(doc, path.slice(0, -1));
  if (Array.isArray(parent)) parent.splice(Number(path.at(-1)), 1);
  else delete parent[path.at(-1)!];
}

const leaves = (doc: Json) => paths(doc).filter((p) => get(doc, p) === null || typeof get(doc, p) !== 'object');
const ofKind = (doc: Json, test: (v: Json) => boolean) => paths(doc).filter((p) => test(get(doc, p)));

const ODD_VALUES: Json[] = ['5', 5, 0, true, false, null, [], {}, [1, 2], { a: 1 }, '', 'auto', -1, 1.5];
const BAD_NUMBERS: Json[] = [0, -1, -0.5, 1.5, 1e308, -1e308, 'NaN', 'Infinity', 2 ** 53 + 2, 1e9, 4294967296, 1e-320, 1e21];
const ODD_KEYS = ['epoch', 'lr', 'batch_size', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', 'x'.repeat(300), 'ü', 'valueOf'];
const ODD_LAYER_TYPES = ['Dense', 'conv', 'maxpool', 'lstmCell', 'input', 'Layer', 'constructor', '__proto__', 'toString', 'rnn', 'bidirectional', 'timeDistributed', 'concatenate', 'add', '', 'x'.repeat(5000), 'dense ', 'DENSE'];
/** Arguments that tfjs-layers refuses, or accepts and then misbehaves on. */
const BAD_ARGS: Record<string, Record<string, Json[]>> = {
  conv2d: {
    kernelSize: [0, -1, [3, 3, 3], 2.5, '3', 1e9, [0, 3], 40, null],
    filters: [0, -1, 1.5, 1e9, '32', 70000],
    strides: [0, [0, 1], -2, 1e9],
    padding: ['foo', 'causal', 1, 'SAME'],
    dataFormat: ['x', 'channels_last'],
    activation: ['reluu', 5, 'Relu', ''],
    dilationRate: [0, -1],
    kernelInitializer: ['foo', 5],
    name: ['a b', '', 'x'.repeat(300)],
  },
  dense: {
    units: [0, -5, 2.5, '10', 1e9, 1e7, null],
    useBias: ['no', 0],
    kernelInitializer: ['foo', 'glorot_uniform'],
    kernelRegularizer: ['l3'],
    activation: ['softmaxx', 'linear ', null, 3],
  },
  maxPooling2d: { poolSize: [0, -1, 100, [2, 2, 2], '2'], strides: [0, -1], padding: ['foo'], dataFormat: ['NHWC'] },
  flatten: { dataFormat: ['x'], units: [3], inputShape: [[3]] },
};
const BAD_LAYERS: Json[] = [
  { type: 'dropout', rate: 1.5 },
  { type: 'dropout', rate: -0.1 },
  { type: 'dropout', rate: 1 },
  { type: 'dropout', rate: 'x' },
  { type: 'dropout' },
  { type: 'reshape', targetShape: [3] },
  { type: 'reshape', targetShape: [0] },
  { type: 'reshape', targetShape: [-1, -1] },
  { type: 'reshape' },
  { type: 'repeatVector', n: 0 },
  { type: 'batchNormalization', momentum: 5 },
  { type: 'batchNormalization', epsilon: -1 },
  { type: 'activation' },
  { type: 'activation', activation: 'foo' },
  { type: 'lstm', units: 4 },
  { type: 'lstm', units: 4, dropout: 2 },
  { type: 'embedding', inputDim: 0, outputDim: 4 },
  { type: 'zeroPadding2d', padding: -1 },
  { type: 'reLU', maxValue: -1 },
  { type: 'conv2d', filters: 4, kernelSize: 40 },
  { type: 'conv2d', filters: 4 },
  { type: 'maxPooling2d', poolSize: 50 },
  { type: 'gaussianNoise', stddev: -1 },
  { type: 'spatialDropout1d', rate: 2 },
  { type: 'permute', dims: [3, 1] },
  { type: 'cropping2D', cropping: 100 },
  { type: 'upSampling2d', size: [0, 0] },
  { type: 'softmax', axis: 99 },
  { type: 'softmax', axis: 0 },
  { type: 'dense', units: 3, name: 'conv2d_1' },
  { type: 'dense', units: 3, name: 'dense_1' },
  { type: 'dense', units: 3, weights: [[1, 2]] },
  { type: 'inputLayer', inputShape: [3] },
  { type: 'dense', units: 1e6 },
  { type: 'conv2d', filters: 65536, kernelSize: 1, padding: 'same' },
  { type: 'globalAveragePooling2d' },
];
const SIZE_BOMBS: [Path, Json][] = [
  [['parallel', 'workers'], 1e6],
  [['parallel', 'workers'], 9],
  [['parallel', 'workers'], 257],
  [['training', 'epochs'], 1e9],
  [['training', 'batchSize'], 1e9],
  [['training', 'batchSize'], 60001],
  [['data', 'samples'], 1e12],
  [['parallel', 'stepTimeoutMs'], 1e12],
  [['parallel', 'rendezvousTimeoutMs'], 2 ** 31],
  [['checkpoint', 'keepLast'], 1e308],
  [['checkpoint', 'everySteps'], 1e308],
  [['training', 'seed'], 2 ** 32],
  [['data', 'trainLimit'], 1e308],
  [['model', 'inputShape'], [100000, 100000, 3]],
  [['model', 'inputShape'], [1, 1, 1, 1, 1, 1, 1]],
  [['name'], 'n'.repeat(1000)],
  [['output', 'dir'], 'd'.repeat(100000)],
];

/** A placeholder replaced in the JSON text by nesting too deep to build as an object. */
const DEEP = '__DEEP_NESTING__';

function text(doc: Json): string {
  return JSON.stringify(doc, null, 2);
}

function randomLayerIndex(doc: Json): number | undefined {
  const layers = doc?.model?.layers;
  return Array.isArray(layers) && layers.length > 0 ? int(0, layers.length - 1) : undefined;
}

/** Structured mutations: change the parsed document in place. */
const STRUCTURED: Record<string, (doc: Json) => void> = {
  'delete a field': (doc) => {
    remove(doc, pick(paths(doc)));
  },
  'wrong type': (doc) => {
    set(doc, pick(paths(doc)), pick(ODD_VALUES));
  },
  'out-of-range number': (doc) => {
    const numbers = ofKind(doc, (v) => typeof v === 'number');
    set(doc, pick(numbers.length > 0 && random() < 0.8 ? numbers : leaves(doc)), pick(BAD_NUMBERS));
  },
  'very long string': (doc) => {
    const strings = ofKind(doc, (v) => typeof v === 'string');
    set(doc, pick(strings.length > 0 && random() < 0.8 ? strings : leaves(doc)), pick(['x', 'é', '\u0000', '🙂']).repeat(pick([300, 5000, 100_000])));
  },
  'huge list': (doc) => {
    const arrays = ofKind(doc, Array.isArray);
    const at = arrays.length > 0 && random() < 0.7 ? pick(arrays) : pick(paths(doc));
    const current = get(doc, at);
    const first = Array.isArray(current) && current.length > 0 ? current[0] : undefined;
    // Small items only: the file stays under a few megabytes (100,000 items of 100 characters
    // passed the 10 MiB read limit, refused as a file rather than by field).
    const item = first !== undefined && JSON.stringify(first).length <= 50 ? first : pick([1, 'accuracy', { type: 'dense', units: 4 }]);
    set(doc, at, Array.from({ length: pick([1025, 5000, 100_000]) }, () => item));
  },
  'unknown layer type': (doc) => {
    const i = randomLayerIndex(doc);
    if (i === undefined) doc.model = { inputShape: [2], layers: [{ type: pick(ODD_LAYER_TYPES) }] };
    else doc.model.layers[i].type = pick(ODD_LAYER_TYPES);
  },
  'unknown key': (doc) => {
    const objects = [[], ...ofKind(doc, (v) => v !== null && typeof v === 'object' && !Array.isArray(v))];
    const target = get(doc, pick(objects)) ?? doc;
    // defineProperty: a "__proto__" key is an own field, as JSON.parse makes it.
    Object.defineProperty(target, pick(ODD_KEYS), { value: pick(ODD_VALUES), enumerable: true, writable: true, configurable: true });
  },
  'bad layer argument': (doc) => {
    const i = randomLayerIndex(doc);
    if (i === undefined) return;
    const layer = doc.model.layers[i];
    if (layer === null || typeof layer !== 'object') return;
    const table = BAD_ARGS[layer.type] ?? BAD_ARGS[pick(Object.keys(BAD_ARGS))]!;
    const arg = pick(Object.keys(table));
    layer[arg] = pick(table[arg]!);
  },
  'bad layer inserted': (doc) => {
    const layers = doc?.model?.layers;
    if (!Array.isArray(layers)) return;
    layers.splice(int(0, layers.length), 0, structuredClone(pick(BAD_LAYERS)));
  },
  'size bomb': (doc) => {
    const [at, value] = pick(SIZE_BOMBS);
    for (let i = 1; i < at.length; i++) if (get(doc, at.slice(0, i)) === undefined || typeof get(doc, at.slice(0, i)) !== 'object') set(doc, at.slice(0, i), {});
    set(doc, at, value);
  },
};

/** Text mutations: break the JSON itself, or make it a document of another kind. */
const TEXTUAL: Record<string, (doc: Json, original: string) => string> = {
  'invalid JSON': (_doc, original) => {
    const at = int(0, original.length);
    switch (int(0, 7)) {
      case 0:
        return original.slice(0, at);
      case 1:
        return original.slice(0, at) + pick([',', '{', '}', '[', ']', ':', '"', "'", '/', '\\', 'x', '\u0001', '\ud800']) + original.slice(at);
      case 2:
        return original.slice(0, at) + original.slice(at + 1);
      case 3:
        return original.replace(/\n\}\s*$/, ',\n}');
      case 4:
        return original.replace(/"/, "'");
      case 5:
        return `// comment\n${original}`;
      case 6:
        return pick(['', '   \n', '\ufeff', 'undefined', 'NaN', '{"a":1}{"b":2}', original + original]);
      default:
        return original.replace(/: (\d+)/, ': $1.');
    }
  },
  'deep nesting': (doc) => {
    const depth = pick([17, 100, 10_000, 100_000]);
    const open = random() < 0.5 ? '[' : '{"a":';
    const close = open === '[' ? ']' : '}';
    if (random() < 0.15) return open.repeat(depth) + '1' + close.repeat(depth);
    // Unterminated: JSON.parse fails, and the scanner that finds where must not overflow the stack.
    if (random() < 0.2) return open.repeat(pick([10_000, 100_000]));
    set(doc, pick(paths(doc)), DEEP);
    return text(doc).replace(JSON.stringify(DEEP), open.repeat(depth) + '1' + close.repeat(depth));
  },
  'not a config object': () => pick(['[]', '[1, 2]', '42', '"configs/xor.json"', 'null', 'true', '{}', '[{"model": {}}]']),
};

const STRUCTURED_NAMES = Object.keys(STRUCTURED);
/** Combined mutations leave out the big ones, which would multiply each other's size. */
const COMBINABLE = STRUCTURED_NAMES.filter((name) => name !== 'huge list' && name !== 'very long string');
const OPERATORS = [...STRUCTURED_NAMES, ...Object.keys(TEXTUAL), 'combination'];

interface FuzzCase {
  id: number;
  operator: string;
  base: string;
  file: string;
}

function makeCases(): FuzzCase[] {
  const dir = join(tmp, 'cases');
  mkdirSync(dir, { recursive: true });
  const configDir = join(root, 'configs');
  const bases = readdirSync(configDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(configDir, f), 'utf8') }));
  const cases: FuzzCase[] = [];
  for (let id = 0; id < CASES; id++) {
    const operator = OPERATORS[id % OPERATORS.length]!;
    const base = pick(bases);
    const doc = JSON.parse(base.text);
    let out: string;
    if (operator in TEXTUAL) {
      out = TEXTUAL[operator]!(doc, base.text);
    } else {
      const steps = operator === 'combination' ? [pick(COMBINABLE), pick(COMBINABLE), ...(random() < 0.5 ? [pick(COMBINABLE)] : [])] : [operator];
      for (const step of steps) STRUCTURED[step]!(doc);
      out = text(doc);
    }
    // The file name is the config's default name: keep the base's, numbered.
    const file = join(dir, `${String(id).padStart(3, '0')}-${base.name}`);
    writeFileSync(file, out);
    cases.push({ id, operator, base: base.name, file });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Running the checks in a worker thread, with a deadline per case
// ---------------------------------------------------------------------------------------------

interface Outcome {
  outcome: 'accepted' | 'refused' | 'crashed' | 'hang';
  name?: string;
  message?: string;
  hint?: string;
  path?: string;
  stack?: string;
  source?: string;
  topology?: boolean;
  /** Weights of an accepted layer-list model. */
  params?: number;
  ms?: number;
}

class Checker {
  private worker: Worker | undefined;

  private async start(): Promise<Worker> {
    const worker = new Worker(new URL('../helpers/config-fuzz-worker.mjs', import.meta.url), { env: { ...process.env, ...FIXED_MACHINE } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return worker;
  }

  async check(file: string): Promise<Outcome> {
    this.worker ??= await this.start();
    const worker = this.worker;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => resolve({ outcome: 'hang' }), CASE_DEADLINE_MS);
        worker.once('message', (reply: Outcome) => resolve(reply));
        worker.once('error', (error) => resolve({ outcome: 'crashed', message: String(error), stack: error.stack }));
        worker.postMessage({ id: file, file, overrides: OVERRIDES });
      });
    } finally {
      clearTimeout(timer);
      worker.removeAllListeners('message');
      worker.removeAllListeners('error');
    }
  }

  /** After a hang the worker is stuck: a fresh one takes the next case. */
  async restart(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}

/** Problems with how a refusal is worded: one line, naming the field (or the file, for a document that is no config). */
function wordingProblems(c: FuzzCase, o: Outcome): string[] {
  const problems: string[] = [];
  const message = o.message ?? '';
  if (message.includes('\n')) problems.push('message has several lines');
  if (o.hint?.includes('\n')) problems.push('hint has several lines');
  if (!message.startsWith(`${c.file}`)) problems.push('message does not start with the file name');
  if (o.path) {
    if (!message.includes(`${o.path}: `)) problems.push(`message does not name its path ${o.path}`);
  } else if (!/malformed JSON|expected an object \(the run config\)/.test(message)) {
    problems.push('refused without naming a field');
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

function ringtrain(args: string[]): Promise<CliRun> {
  return runCli(args, { cwd: tmp, env: { RINGTRAIN_CACHE: join(tmp, 'cache'), ...FIXED_MACHINE }, deadlineMs: CLI_DEADLINE_MS });
}

/**
 * A few steps: batches of at most 4 samples, two of them, and at most 8 test samples (an
 * accepted config may be a slow one, e.g. a conv2d of 65,536 filters: a few samples keep it short).
 */
function shortRunVariant(c: FuzzCase): string {
  const doc = JSON.parse(readFileSync(c.file, 'utf8'));
  const batch = Math.min(doc.training.batchSize, 4);
  doc.training.batchSize = batch;
  doc.data = typeof doc.data === 'string' ? { source: doc.data } : doc.data;
  doc.data.trainLimit = Math.min(doc.data.trainLimit ?? Infinity, 2 * batch);
  doc.data.testLimit = Math.min(doc.data.testLimit ?? Infinity, 8);
  const file = c.file.replace(/\.json$/, '.short.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

describe('config fuzzing', () => {
  let cases: FuzzCase[] = [];
  const outcomes = new Map<number, Outcome>();
  const flags = (c: FuzzCase) => ['--epochs', '1', '--no-checkpoints', '--out', join(tmp, 'runs', String(c.id))];

  // Every case through the checks, in a worker thread: the tests below judge the outcomes.
  beforeAll(async () => {
    cases = makeCases();
    const checker = new Checker();
    try {
      for (const c of cases) {
        const o = await checker.check(c.file);
        if (o.outcome === 'hang') await checker.restart();
        outcomes.set(c.id, o);
      }
    } finally {
      await checker.close();
    }
  }, 120_000);

  it(`${CASES} mutated configs: each refused with one line naming the field, or accepted; none hangs or crashes`, () => {
    const failures: string[] = [];
    const count = { refused: 0, refusedField: 0, refusedDocument: 0, accepted: 0, crashed: 0, hang: 0 };
    const byOperator: Record<string, { refused: number; accepted: number }> = {};
    let slowest = 0;
    for (const c of cases) {
      const o = outcomes.get(c.id)!;
      slowest = Math.max(slowest, o.ms ?? CASE_DEADLINE_MS);
      const row = (byOperator[c.operator] ??= { refused: 0, accepted: 0 });
      if (o.outcome === 'hang' || o.outcome === 'crashed') {
        count[o.outcome]++;
        failures.push(`#${c.id} ${c.operator} (${c.base}): ${o.outcome}: ${o.stack ?? o.message ?? ''}`);
        continue;
      }
      if (o.outcome === 'accepted') {
        count.accepted++;
        row.accepted++;
        continue;
      }
      count.refused++;
      row.refused++;
      if (o.path) count.refusedField++;
      else count.refusedDocument++;
      for (const problem of wordingProblems(c, o)) failures.push(`#${c.id} ${c.operator} (${c.base}): ${problem}: ${o.message}`);
    }

    const summary =
      `config fuzz (seed ${SEED}): ${cases.length} cases: ${count.refused} refused (${count.refusedField} naming a field, ${count.refusedDocument} the document), ` +
      `${count.accepted} accepted, ${count.hang} hangs, ${count.crashed} other errors; slowest check ${Math.round(slowest)} ms`;
    console.log(summary);
    for (const id of (process.env.RINGTRAIN_FUZZ_SHOW ?? '').split(',').filter(Boolean).map(Number)) {
      const c = cases[id]!;
      console.log(`case #${id} ${c.operator}: ${JSON.stringify(outcomes.get(id))}: ${readFileSync(c.file, 'utf8').replace(/\s+/g, ' ').slice(0, 1500)}`);
    }
    if (process.env.RINGTRAIN_FUZZ_VERBOSE) {
      for (const c of cases.filter((c) => outcomes.get(c.id)!.outcome === 'accepted')) console.log(`accepted #${c.id} ${c.operator}: ${readFileSync(c.file, 'utf8').replace(/\s+/g, ' ').slice(0, 600)}`);
    }
    console.log(`by mutation: ${Object.entries(byOperator).map(([op, r]) => `${op} ${r.refused}/${r.accepted}`).join(', ')} (refused/accepted)`);

    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(200);
    // The mutations mostly break configs; the accepted share is counted, not assumed.
    expect(count.refused).toBeGreaterThan(cases.length * 0.6);
  }, 30_000);

  it(`the real CLI refuses ${CLI_REFUSED} of them (one per kind of mutation): exit 2, the same line, no stack`, async () => {
    const refusedSample = OPERATORS.map((op) => cases.find((c) => c.operator === op && outcomes.get(c.id)!.outcome === 'refused'))
      .filter((c): c is FuzzCase => c !== undefined)
      .slice(0, CLI_REFUSED);
    expect(refusedSample.length).toBe(CLI_REFUSED);
    const failures: string[] = [];
    await inPairs(refusedSample, async (c) => {
      const run = await ringtrain(['train', c.file, ...flags(c)]);
      const lines = run.stderr.split('\n').filter((l) => l !== '');
      const o = outcomes.get(c.id)!;
      const expected = [`ringtrain: ${o.message}`, ...(o.hint ? [`hint: ${o.hint}`] : [])];
      if (run.code !== 2 || run.stdout !== '' || run.stderr.includes('    at ') || JSON.stringify(lines) !== JSON.stringify(expected)) {
        failures.push(`CLI #${c.id} ${c.operator}: exit ${run.code} in ${Math.round(run.ms)} ms, stderr ${JSON.stringify(run.stderr.slice(0, 2000))}`);
      }
    });
    expect(failures).toEqual([]);
  }, (CLI_REFUSED / 2) * CLI_DEADLINE_MS);

  it(`up to ${CLI_ACCEPTED} accepted configs train a few steps through the CLI: exit 0, or 2 with one line, never a stack`, async () => {
    const runnable = cases.filter((c) => {
      const o = outcomes.get(c.id)!;
      // Offline data only, and small models: a valid 42-million-weight model trains, slowly (40 s for 2 steps here).
      return o.outcome === 'accepted' && !o.topology && (o.params ?? Infinity) <= SHORT_RUN_MAX_PARAMS && ['xor', 'linear', 'embedded-mnist'].includes(o.source ?? '');
    });
    const acceptedSample = runnable.filter((_, i) => i % Math.max(1, Math.floor(runnable.length / CLI_ACCEPTED)) === 0).slice(0, CLI_ACCEPTED);
    expect(acceptedSample.length).toBeGreaterThan(0);
    const failures: string[] = [];
    const cli = { ran: 0, ranRefused: 0 };
    await inPairs(acceptedSample, async (c) => {
      const run = await ringtrain(['train', shortRunVariant(c), ...flags(c), '--workers', '1']);
      const errorLines = run.stderr.split('\n').filter((l) => l.startsWith('ringtrain:'));
      const ok = run.code === 0 && errorLines.length === 0;
      const userError = run.code === 2 && errorLines.length === 1 && !run.stderr.includes('    at ');
      if (process.env.RINGTRAIN_FUZZ_VERBOSE) console.log(`CLI run #${c.id}: exit ${run.code} in ${Math.round(run.ms)} ms: ${run.stderr.slice(-500)}`);
      if (ok) cli.ran++;
      else if (userError) cli.ranRefused++;
      else failures.push(`CLI run #${c.id} ${c.operator}: exit ${run.code} in ${Math.round(run.ms)} ms, stderr ${JSON.stringify(run.stderr.slice(-2000))}`);
    });

    console.log(`config fuzz (seed ${SEED}): short runs of accepted configs: ${cli.ran} trained, ${cli.ranRefused} refused with a UserError, of ${acceptedSample.length}`);
    expect(failures).toEqual([]);
  }, (CLI_ACCEPTED / 2) * CLI_DEADLINE_MS);
});
